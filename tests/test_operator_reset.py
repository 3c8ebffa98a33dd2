"""Admins reset another operator's password (the operator must change it at their next login), an
operator's email may be at a ``.local`` domain, and disabling an operator asks for a confirmation."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import AuditEvent, Operator
from dashboard.operators.services import email_problem
from tests.conftest import PERSONA_PASSWORD


def operator(app, operator_id: int) -> Operator:
    with app.app_context():
        return db.session.get(Operator, operator_id)


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def login(client, email: str, password: str):
    return client.post("/login", data={"email": email, "password": password})


# -- .local emails --------------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["admin@tongzhi.local", "ops@intranet.corp.local", "小明@例子.local"])
def test_local_domains_are_operator_emails(email):
    assert email_problem(email) is None


@pytest.mark.parametrize(
    "email", ["garbage", "a@@b.local", "a@.local", "x@local", "a b@c.local", "a@b..local", "a@localhost"]
)
def test_garbage_is_still_refused(email):
    assert email_problem(email) is not None


def test_an_admin_adds_an_operator_at_a_local_domain_and_they_log_in(app, client, auth):
    auth.login("admin")
    response = client.post(
        "/settings/operators/",
        data={"email": "ops@tongzhi.local", "role": "viewer", "password": "long enough pw"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    auth.logout()
    assert login(client, "ops@tongzhi.local", "long enough pw").status_code == 302
    assert client.get("/users").status_code == 200


def test_the_form_refuses_an_address_that_is_not_one(app, client, auth):
    auth.login("admin")
    response = client.post(
        "/settings/operators/", data={"email": "ops@", "role": "viewer", "password": "long enough pw"}
    )
    assert response.status_code == 200 and "邮箱地址无效" in response.get_data(as_text=True)


def test_the_demo_admin_command_creates_its_local_admin(app, runner):
    result = runner.invoke(args=["demo-admin"])
    assert result.exit_code == 0, result.output
    assert "admin@tongzhi.local" in result.output


# -- password reset -------------------------------------------------------------------------------------


def test_a_generated_temporary_password_is_shown_once_and_must_be_changed(app, client, auth, personas):
    auth.login("admin")
    mark = personas["marketer"]
    form = client.get(f"/settings/operators/{mark.id}/password")
    assert form.status_code == 200 and mark.email in form.get_data(as_text=True)
    response = client.post(f"/settings/operators/{mark.id}/password", data={"password": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    temporary = re.search(r'<code class="secret" id="temporary-password">([^<]+)</code>', page)[1]
    assert len(temporary) >= 10
    changed = operator(app, mark.id)
    assert changed.must_change_password and changed.check_password(temporary)
    assert not changed.check_password(PERSONA_PASSWORD)
    # The audit log says so, without the password.
    (event,) = events(app, "operator.password_reset")
    assert event.actor_email == "alice@example.com" and event.target_id == str(mark.id)
    assert event.detail == {"generated": True} and temporary not in str(event.detail)
    # Shown once: the operators page does not show it again.
    assert temporary not in client.get("/settings/operators/").get_data(as_text=True)

    # Mark logs in with it and can do nothing but choose a new password.
    auth.logout()
    response = login(client, mark.email, temporary)
    assert response.status_code == 302 and response.headers["Location"] == "/account/password"
    assert client.get("/campaigns/").headers["Location"] == "/account/password"
    fragment = client.get("/deliveries/", headers={"HX-Request": "true"})
    assert fragment.headers["HX-Redirect"] == "/account/password"
    page = client.get("/account/password").get_data(as_text=True)
    assert "管理员为你设置了临时密码" in page
    same = client.post(
        "/account/password",
        data={"current_password": temporary, "new_password": temporary, "confirm": temporary},
    )
    assert "新密码不能与当前密码相同" in same.get_data(as_text=True)
    done = client.post(
        "/account/password",
        data={"current_password": temporary, "new_password": "mark's own pw", "confirm": "mark's own pw"},
    )
    assert done.status_code == 302
    assert client.get("/campaigns/").status_code == 200
    changed = operator(app, mark.id)
    assert not changed.must_change_password and changed.check_password("mark's own pw")
    (event,) = events(app, "operator.password_changed")
    assert event.detail == {"after_reset": True}


def test_a_typed_temporary_password_is_not_shown_back(app, client, auth, personas):
    auth.login("admin")
    vera = personas["viewer"]
    page = client.post(
        f"/settings/operators/{vera.id}/password", data={"password": "typed temp pw 1"}
    ).get_data(as_text=True)
    assert "typed temp pw 1" not in page and 'id="temporary-password"' not in page
    assert operator(app, vera.id).check_password("typed temp pw 1")
    assert events(app, "operator.password_reset")[0].detail == {"generated": False}


def test_a_reset_ends_a_lockout_and_reaches_open_sessions(app, client, auth, personas):
    from datetime import timedelta

    from dashboard.models import utcnow

    with app.app_context():
        db.session.get(Operator, personas["viewer"].id).locked_until = utcnow() + timedelta(minutes=10)
        db.session.commit()
    auth.login("admin")
    client.post(f"/settings/operators/{personas['viewer'].id}/password", data={"password": "typed temp pw 1"})
    assert operator(app, personas["viewer"].id).locked_until is None
    # A session Vera already had open is sent to the password page too.
    auth.login("viewer")
    assert client.get("/users").headers["Location"] == "/account/password"


def test_reset_needs_an_admin_and_not_ones_own_account(app, client, auth, personas):
    auth.login("marketer")
    assert client.post(f"/settings/operators/{personas['viewer'].id}/password").status_code == 403
    auth.login("admin")
    short = client.post(f"/settings/operators/{personas['viewer'].id}/password", data={"password": "short"})
    assert short.status_code == 200 and not operator(app, personas["viewer"].id).must_change_password
    own = client.post(f"/settings/operators/{personas['admin'].id}/password", data={"password": "x" * 12})
    assert "请在自己的账号页面修改自己的密码" in own.get_data(as_text=True)
    assert not operator(app, personas["admin"].id).must_change_password
    assert events(app, "operator.password_reset") == []


# -- disabling asks for a confirmation ------------------------------------------------------------------


def test_disabling_asks_for_a_confirmation_naming_the_operator(app, client, auth, personas):
    auth.login("admin")
    mark = personas["marketer"].id
    response = client.post(
        f"/settings/operators/{mark}", data={f"op{mark}-role": "marketer", f"op{mark}-disabled": "y"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "停用 mark@example.com？" in page and "会立即被登出" in page and "无法登录" in page
    assert not operator(app, mark).is_disabled  # refused until confirmed
    assert events(app, "operator.updated") == []
    # The confirmation page posts the same change, confirmed.
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    assert fields["confirm"] == "yes" and fields[f"op{mark}-disabled"] == "y"
    response = client.post(f"/settings/operators/{mark}", data=fields)
    assert response.status_code == 302 and operator(app, mark).is_disabled
    # Mark's session stops working.
    auth.login("marketer")
    assert client.get("/users").status_code == 302


def test_enabling_and_re_roling_need_no_confirmation(app, client, auth, personas):
    auth.login("admin")
    vera = personas["viewer"].id
    with app.app_context():
        db.session.get(Operator, vera).is_disabled = True
        db.session.commit()
    client.post(f"/settings/operators/{vera}", data={f"op{vera}-role": "marketer"})
    again = operator(app, vera)
    assert not again.is_disabled and again.role.value == "marketer"
