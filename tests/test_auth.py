"""Logging in for real: passwords, lockout, disabled accounts, logout, own password."""

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import AuditEvent, Operator


def login(client, email, password, next_url=""):
    return client.post("/login", data={"email": email, "password": password, "next": next_url})


def audit_actions(app, email=None):
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.id)
        if email:
            query = query.where(AuditEvent.actor_email == email)
        return [event.action for event in db.session.scalars(query)]


def test_the_right_password_logs_in_and_is_audited(app, client, personas):
    response = login(client, "ALICE@example.com ", personas["admin"].password)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert audit_actions(app, "alice@example.com") == ["auth.login"]


def test_login_redirects_only_to_same_site_paths(client, personas):
    ok = login(client, "alice@example.com", personas["admin"].password, next_url="/settings/")
    assert ok.headers["Location"] == "/settings/"
    client.post("/logout")
    evil = login(client, "alice@example.com", personas["admin"].password, next_url="//evil.example/")
    assert evil.headers["Location"] == "/"


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(app, client, personas):
    response = login(client, "alice@example.com", "nope")
    assert response.status_code == 200
    assert "邮箱或密码错误" in response.get_data(as_text=True)
    unknown = login(client, "nobody@example.com", "nope")
    assert "邮箱或密码错误" in unknown.get_data(as_text=True)
    assert audit_actions(app) == ["auth.login_failed", "auth.login_failed"]


def test_five_wrong_passwords_lock_the_account_with_a_clear_message(app, client, personas):
    for _ in range(5):
        page = login(client, "mark@example.com", "wrong").get_data(as_text=True)
        assert "邮箱或密码错误。连续失败 5 次后账号将锁定 15 分钟" in page
    # Locked: even the right password is refused, with the same sentence (it names the lockout).
    right = login(client, "mark@example.com", personas["marketer"].password)
    assert right.status_code == 200
    assert "期间即使密码正确也无法登录" in right.get_data(as_text=True)
    assert client.get("/").status_code == 302
    actions = audit_actions(app, "mark@example.com")
    assert actions.count("auth.login_failed") == 5 and actions.count("auth.locked") == 1
    assert actions[-1] == "auth.login_refused"
    # The operators page tells an admin until when.
    with app.app_context():
        assert db.session.get(Operator, personas["marketer"].id).locked_until is not None


def test_the_lockout_message_in_english(app, client, personas):
    client.post("/language/en", data={"next": "/login"})
    for _ in range(5):
        page = login(client, "mark@example.com", "wrong").get_data(as_text=True)
    page = login(client, "mark@example.com", personas["marketer"].password).get_data(as_text=True)
    assert "After 5 failures in a row an account is locked for 15 minutes" in page


def test_the_audit_log_shows_the_failures_to_an_admin(app, client, personas, auth):
    for _ in range(5):
        login(client, "vera@example.com", "wrong")
    auth.login("admin")
    page = client.get("/settings/audit/?action=auth.login_failed").get_data(as_text=True)
    assert page.count("auth.login_failed") >= 5
    assert "vera@example.com" in page


def test_an_admin_can_unlock_a_locked_operator(app, client, personas, auth):
    for _ in range(5):
        login(client, "mark@example.com", "wrong")
    auth.login("admin")
    assert client.post(f"/settings/operators/{personas['marketer'].id}/unlock").status_code == 302
    auth.logout()
    assert login(client, "mark@example.com", personas["marketer"].password).status_code == 302


def test_a_disabled_operator_cannot_log_in_and_is_logged_out(app, client, personas):
    assert login(client, "vera@example.com", personas["viewer"].password).status_code == 302
    with app.app_context():
        db.session.get(Operator, personas["viewer"].id).is_disabled = True
        db.session.commit()
    assert client.get("/").status_code == 302  # the running session stops working
    page = login(client, "vera@example.com", personas["viewer"].password).get_data(as_text=True)
    assert "此账号已停用" in page


def test_logout_is_a_post_and_is_audited(app, client, personas):
    login(client, "alice@example.com", personas["admin"].password)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302
    assert audit_actions(app, "alice@example.com")[-1] == "auth.logout"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_an_operator_changes_their_own_password(app, client, personas):
    login(client, "vera@example.com", personas["viewer"].password)
    wrong = client.post(
        "/account/password",
        data={"current_password": "not it", "new_password": "a new password!", "confirm": "a new password!"},
    )
    assert "当前密码不正确" in wrong.get_data(as_text=True)
    short = client.post(
        "/account/password",
        data={"current_password": personas["viewer"].password, "new_password": "short", "confirm": "short"},
    )
    assert short.status_code == 200 and "10" in short.get_data(as_text=True)
    ok = client.post(
        "/account/password",
        data={
            "current_password": personas["viewer"].password,
            "new_password": "a new password!",
            "confirm": "a new password!",
        },
    )
    assert ok.status_code == 302
    client.post("/logout")
    assert login(client, "vera@example.com", "a new password!").status_code == 302
    assert "operator.password_changed" in audit_actions(app, "vera@example.com")


def test_passwords_are_stored_with_a_modern_kdf(app, runner):
    result = runner.invoke(
        args=["create-operator", "kdf@example.com", "--role", "viewer", "--password-stdin"],
        input="long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        operator = db.session.scalar(select(Operator).where(Operator.email == "kdf@example.com"))
        assert operator.password_hash.startswith("scrypt:")
        assert "long enough password" not in operator.password_hash
