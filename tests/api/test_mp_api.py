"""/api/mp/ through the test client: login, tokens, reports, settings, and each documented error."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from dashboard.api import tokens
from dashboard.extensions import db
from dashboard.models import WechatUser
from dashboard.models.grants import GrantEvent, GrantReport

T1, T2, T3 = (
    "TMPL_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "TMPL_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "TMPL_c",
)
OK = {"errMsg": "requestSubscribeMessage:ok"}


def login(client, sandbox, openid=None) -> tuple[str, str]:
    openid = openid or sandbox.openids()[0]
    code = sandbox.post(f"/users/{openid}/login-code")["code"]
    response = client.post("/api/mp/session", json={"code": code})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"], openid


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(response) -> str:
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]["code"]


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_login_creates_the_user_with_unionid_and_returns_only_a_token(app, client, sandbox):
    created = sandbox.post("/users", {"unionid": True, "nickname": "小明"})
    token, openid = login(client, sandbox, created["openid"])
    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
        assert user.unionid == created["unionid"] and user.last_login_at is not None
    # Logging in again finds the same user.
    login(client, sandbox, openid)
    assert count(app, WechatUser) == 1
    response = client.post(
        "/api/mp/session", json={"code": sandbox.post(f"/users/{openid}/login-code")["code"]}
    )
    assert set(response.get_json()) == {"token", "expires_in"}
    assert response.headers["Cache-Control"] == "no-store"


def test_a_used_or_made_up_code_is_401(client, sandbox):
    openid = sandbox.openids()[0]
    code = sandbox.post(f"/users/{openid}/login-code")["code"]
    assert client.post("/api/mp/session", json={"code": code}).status_code == 200
    again = client.post("/api/mp/session", json={"code": code})
    assert again.status_code == 401 and error_of(again) == "login_code_invalid"
    assert error_of(client.post("/api/mp/session", json={"code": "made-up"})) == "login_code_invalid"


def test_wechat_being_down_is_a_503_with_retry_after(app, client, sandbox):
    app.config["WECHAT_API_BASE"] = "http://127.0.0.1:9"  # nothing listens there: connection refused
    code = sandbox.post(f"/users/{sandbox.openids()[0]}/login-code")["code"]
    response = client.post("/api/mp/session", json={"code": code})
    assert response.status_code == 503 and error_of(response) == "wechat_unavailable"
    assert response.headers["Retry-After"]


@pytest.mark.parametrize(
    "body,status,code",
    [
        (b"", 400, "invalid_json"),
        (b"{oops", 400, "invalid_json"),
        (b"\xff\xfe\x00garbage", 400, "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, 400, "invalid_json"),
        (b'["code"]', 422, "invalid_body"),
        (b"{}", 422, "invalid_field"),
        (b'{"code": 12345}', 422, "invalid_field"),
        (b'{"code": ""}', 422, "invalid_field"),
    ],
)
def test_login_bodies_that_are_not_a_code(client, body, status, code):
    response = client.post("/api/mp/session", data=body, content_type="application/json")
    assert response.status_code == status and error_of(response) == code


def test_tokens_missing_forged_expired_or_for_another_app(app, client, sandbox):
    token, _ = login(client, sandbox)
    assert client.get("/api/mp/grants", headers=bearer(token)).status_code == 200
    # The signature's first character changed: its last ones carry unused base64 bits, and ending the
    # token in "xx" left it valid about once in a thousand runs (a CI run saw it).
    payload, _, signature = token.rpartition(".")
    forged = f"{payload}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    cases = {
        None: (401, "token_missing"),
        "Basic abc": (401, "token_invalid"),
        "Bearer ": (401, "token_invalid"),
        f"Bearer {forged}": (401, "token_invalid"),
        "Bearer " + "x" * 2000: (401, "token_invalid"),
    }
    for header, (status, code) in cases.items():
        response = client.get("/api/mp/grants", headers={"Authorization": header} if header else {})
        assert (response.status_code, error_of(response)) == (status, code), header
    with app.test_request_context():
        user = db.session.scalar(select(WechatUser))
        expired = tokens.issue_token(user, now=time.time() - app.config["MP_TOKEN_TTL_SECONDS"] - 10)
        foreign_app = dict(app.config)
    response = client.get("/api/mp/grants", headers=bearer(expired))
    assert (response.status_code, error_of(response)) == (401, "token_expired")
    # A genuine token from another mini-program served by the same deployment (same SECRET_KEY).
    app.config["WECHAT_APPID"] = "wxanotherapp000000"
    response = client.get("/api/mp/grants", headers=bearer(token))
    assert (response.status_code, error_of(response)) == (403, "token_wrong_app")
    app.config.update(foreign_app)
    # A token signed with another key (another deployment) is forged as far as we know.
    app.config["SECRET_KEY"] = "another-secret-key-0123456789"
    assert error_of(client.get("/api/mp/grants", headers=bearer(token))) == "token_invalid"


def test_a_report_is_recorded_and_flags_templates_nobody_registered(app, client, sandbox):
    token, _ = login(client, sandbox)
    body = {**OK, T1: "accept", T2: "ban", T3: "filter", "scene": 1001, "page": "pages/order/detail"}
    response = client.post("/api/mp/grants", json=body, headers=bearer(token))
    assert response.status_code == 200
    grants = {g["template_id"]: g for g in response.get_json()["grants"]}
    assert grants[T1] == {"template_id": T1, "kind": "one_time", "credits": 1, "active": True, "known": False}
    assert grants[T2]["credits"] == grants[T3]["credits"] == 0
    with app.app_context():
        events = db.session.scalars(select(GrantEvent).order_by(GrantEvent.id)).all()
        assert [(e.status, e.scene, e.page) for e in events] == [
            ("accept", "1001", "pages/order/detail"),
            ("ban", "1001", "pages/order/detail"),
            ("filter", "1001", "pages/order/detail"),
        ]
    one = client.get(f"/api/mp/grants/{T1}", headers=bearer(token))
    assert one.get_json()["credits"] == 1
    unknown = client.get("/api/mp/grants/NEVER_SEEN", headers=bearer(token))
    assert unknown.status_code == 404 and error_of(unknown) == "unknown_template"


def test_the_same_idempotency_key_with_another_body_is_409_and_writes_nothing(app, client, sandbox):
    token, _ = login(client, sandbox)
    headers = {**bearer(token), "Idempotency-Key": "prompt-1"}
    assert client.post("/api/mp/grants", json={**OK, T1: "accept"}, headers=headers).status_code == 200
    conflict = client.post("/api/mp/grants", json={**OK, T1: "reject"}, headers=headers)
    assert conflict.status_code == 409 and error_of(conflict) == "idempotency_key_reused"
    assert count(app, GrantEvent) == 1 and count(app, GrantReport) == 1
    # Keys belong to a user: another user may use the same key.
    other, _ = login(client, sandbox, sandbox.openids()[1])
    other_headers = {**bearer(other), "Idempotency-Key": "prompt-1"}
    assert client.post("/api/mp/grants", json={**OK, T1: "reject"}, headers=other_headers).status_code == 200


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({T1: "accept"}, 422, "invalid_field"),
        ({"errMsg": 1, T1: "accept"}, 422, "invalid_field"),
        ({"errMsg": "requestSubscribeMessage:fail cancel", T1: "accept"}, 422, "prompt_failed"),
        (OK, 422, "no_templates"),
        ({**OK, T1: "maybe"}, 422, "invalid_status"),
        ({**OK, T1: 1}, 422, "invalid_status"),
        ({**OK, T1: None}, 422, "invalid_status"),
        ({**OK, "bad id!": "accept"}, 422, "invalid_template_id"),
        ({**OK, "x" * 65: "accept"}, 422, "invalid_template_id"),
        ({**OK, **{f"T{i}": "accept" for i in range(6)}}, 422, "too_many_templates"),
        ({**OK, T1: "accept", "scene": ["a"]}, 422, "invalid_field"),
        ({**OK, T1: "accept", "scene": True}, 422, "invalid_field"),
        ({**OK, T1: "accept", "page": "p" * 513}, 422, "invalid_field"),
        # No text can hold a NUL or a lone surrogate: the body itself is refused (storable.loads_storable).
        ({**OK, T1: "accept", "page": "pages/a\x00b"}, 400, "invalid_json"),
        ({**OK, T1: "accept", "scene": "\ud800"}, 400, "invalid_json"),
        ([OK], 422, "invalid_body"),
    ],
)
def test_bad_reports_are_refused_whole(app, client, sandbox, body, status, code):
    token, _ = login(client, sandbox)
    response = client.post("/api/mp/grants", json=body, headers=bearer(token))
    assert (response.status_code, error_of(response)) == (status, code)
    assert count(app, GrantEvent) == 0 and count(app, GrantReport) == 0


def test_a_malformed_idempotency_key_is_400(client, sandbox):
    token, _ = login(client, sandbox)
    headers = {**bearer(token), "Idempotency-Key": "has space"}
    response = client.post("/api/mp/grants", json={**OK, T1: "accept"}, headers=headers)
    assert (response.status_code, error_of(response)) == (400, "invalid_idempotency_key")


def test_settings_are_recorded_on_the_user(app, client, sandbox):
    token, openid = login(client, sandbox)
    setting = {
        "mainSwitch": False,
        "itemSettings": {T1: "reject", "SYS_MSG_TYPE_INTERACTIVE": "accept"},
        T2: "accept",
    }
    response = client.post("/api/mp/settings", json={"subscriptionsSetting": setting}, headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {
        "main_switch": False,
        "item_settings": {T1: "reject", "SYS_MSG_TYPE_INTERACTIVE": "accept", T2: "accept"},
    }
    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
        assert user.main_switch is False and user.item_settings[T1] == "reject" and user.settings_reported_at
    for bad, code in (
        ({}, "invalid_field"),
        ({"mainSwitch": "no"}, "invalid_field"),
        ({"mainSwitch": True, "itemSettings": []}, "invalid_field"),
        ({"mainSwitch": True, T1: "perhaps"}, "invalid_status"),
        ({"subscriptionsSetting": 3}, "invalid_field"),
    ):
        response = client.post("/api/mp/settings", json=bad, headers=bearer(token))
        assert (response.status_code, error_of(response)) == (422, code)


def test_unknown_paths_and_wrong_methods_answer_json(client):
    missing = client.get("/api/mp/nothing/here")
    assert missing.status_code == 404 and error_of(missing) == "not_found"
    wrong = client.delete("/api/mp/grants")
    assert wrong.status_code == 405 and error_of(wrong) == "method_not_allowed"
    assert set(wrong.headers["Allow"].split(", ")) - {"HEAD", "OPTIONS"} == {"GET", "POST"}
    assert client.post("/api/mp/ping").status_code == 405
    assert client.get("/api/mp/session").status_code == 405


def test_the_api_needs_no_csrf_token(app, client, sandbox):
    app.config["WTF_CSRF_ENABLED"] = True
    token, _ = login(client, sandbox)
    assert client.post("/api/mp/grants", json={**OK, T1: "accept"}, headers=bearer(token)).status_code == 200


def test_the_session_key_is_never_stored_or_returned(app, client, sandbox):
    token, _ = login(client, sandbox)
    with app.app_context():
        columns = set(WechatUser.__table__.columns.keys())
    assert not any("session_key" in name for name in columns)
    assert "session_key" not in client.get("/api/mp/openapi.json").get_data(as_text=True).replace(
        "session_key never", ""
    )
