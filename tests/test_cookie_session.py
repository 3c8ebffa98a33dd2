"""The mini-program's API never opens the operators' cookie session (dashboard/auth/cookie_session.py)."""

from __future__ import annotations


def test_a_logged_in_operators_cookie_is_neither_read_nor_renewed_by_the_mini_program_api(app, client, auth):
    auth.login("admin")
    assert client.get("/").status_code == 200  # the console knows the operator
    ping = client.get("/api/mp/ping")
    assert ping.status_code == 200 and ping.get_json() == {"ok": True}
    assert "Set-Cookie" not in ping.headers
    # An operator's cookie is no credential there: the grants need the mini-program's token.
    grants = client.get("/api/mp/grants")
    assert grants.status_code == 401 and grants.get_json()["error"]["code"] == "token_missing"
    assert client.get("/").status_code == 200  # and the console session is untouched


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
