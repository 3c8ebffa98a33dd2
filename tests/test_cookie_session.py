"""The mini-program's API never opens the operators' cookie session (dashboard/auth/cookie_session.py)."""

from __future__ import annotations


def test_the_mini_program_api_never_loads_the_operator(app, client, auth, monkeypatch):
    """An operator logged in in the same browser: the console loads them, the token-authenticated API
    does not (it has no cookie session to find them in), and their cookie is no credential there."""
    auth.login("admin")
    loads: list[str] = []
    loader = app.login_manager._user_callback

    def counting_loader(user_id):
        loads.append(user_id)
        return loader(user_id)

    monkeypatch.setattr(app.login_manager, "_user_callback", counting_loader)
    assert client.get("/").status_code == 200
    assert loads, "the console loads the operator (else this test counts nothing)"
    loads.clear()
    ping = client.get("/api/mp/ping")
    assert ping.status_code == 200 and ping.get_json() == {"ok": True}
    assert "Set-Cookie" not in ping.headers
    grants = client.get("/api/mp/grants")
    assert grants.status_code == 401 and grants.get_json()["error"]["code"] == "token_missing"
    assert loads == []


def test_the_api_cannot_write_the_cookie_session(app):
    from flask import session

    with app.test_request_context("/api/mp/ping"):
        app.preprocess_request()
        try:
            session["x"] = 1
        except RuntimeError:
            pass
        else:
            raise AssertionError("the mini-program API wrote the operators' session")
