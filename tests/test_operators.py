"""The admin page for operators, and the create-operator command."""

from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import AuditEvent, Operator, Role


def operator_by_email(app, email):
    with app.app_context():
        return db.session.scalar(select(Operator).where(Operator.email == email))


def test_an_admin_adds_an_operator(app, client, auth):
    auth.login("admin")
    response = client.post(
        "/settings/operators/",
        data={"email": "New@Example.com", "name": "New", "role": "marketer", "password": "long enough pw"},
    )
    assert response.status_code == 302
    added = operator_by_email(app, "new@example.com")
    assert added.role == Role.marketer and added.check_password("long enough pw")
    page = client.get("/settings/operators/").get_data(as_text=True)
    assert "new@example.com" in page and "long enough pw" not in page
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "operator.created"))
        assert event.actor_email == "alice@example.com" and event.target_id == str(added.id)
        assert "password" not in event.detail


def test_adding_a_duplicate_email_shows_a_form_error(app, client, auth):
    auth.login("admin")
    response = client.post(
        "/settings/operators/",
        data={"email": "mark@example.com", "role": "viewer", "password": "long enough pw"},
    )
    assert response.status_code == 200
    assert "邮箱为 mark@example.com 的操作员已存在" in response.get_data(as_text=True)


def test_an_admin_re_roles_and_disables_an_operator(app, client, auth, personas):
    auth.login("admin")
    mark = personas["marketer"].id
    client.post(
        f"/settings/operators/{mark}",
        data={f"op{mark}-role": "viewer", f"op{mark}-disabled": "y", "confirm": "yes"},
    )
    changed = operator_by_email(app, "mark@example.com")
    assert changed.role == Role.viewer and changed.is_disabled
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "operator.updated"))
        assert event.detail == {"role": ["marketer", "viewer"], "disabled": [False, True]}


def test_the_last_admin_cannot_be_demoted_or_disable_themselves(app, client, auth, personas):
    auth.login("admin")
    alice = personas["admin"].id
    response = client.post(
        f"/settings/operators/{alice}", data={f"op{alice}-role": "viewer"}, follow_redirects=True
    )
    assert "这是最后一个有效的管理员" in response.get_data(as_text=True)
    assert operator_by_email(app, "alice@example.com").role == Role.admin


def test_create_operator_command_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(
        args=["create-operator", "ops@example.com", "--role", "admin", "--password-stdin"],
        input="a strong password\n",
    )
    assert result.exit_code == 0, result.output
    assert "ops@example.com" in result.output and "a strong password" not in result.output
    assert operator_by_email(app, "ops@example.com").role == Role.admin


def test_create_operator_command_prompts_and_refuses_short_passwords(app, runner):
    prompted = runner.invoke(
        args=["create-operator", "p@example.com"], input="prompted password\nprompted password\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert operator_by_email(app, "p@example.com").role == Role.viewer
    short = runner.invoke(args=["create-operator", "s@example.com", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "at least 10" in short.output
    duplicate = runner.invoke(
        args=["create-operator", "p@example.com", "--password-stdin"], input="another password\n"
    )
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output


def test_demo_admin_is_created_only_on_an_empty_database(app, runner):
    first = runner.invoke(args=["demo-admin"])
    assert "admin@tongzhi.local" in first.output and "password:" in first.output
    second = runner.invoke(args=["demo-admin"])
    assert "already exist" in second.output
