"""Admins browse and filter the audit log; the table refreshes as an htmx fragment."""

from datetime import UTC, datetime

from dashboard.audit.services import record
from dashboard.extensions import db
from dashboard.models import AuditEvent


def seed(app):
    with app.app_context():
        record("operator.created", target_type="operator", target_id="7", actor_email="alice@example.com")
        record("auth.login_failed", target_type="operator", actor_email="bob@example.com", reason="password")
        old = record("auth.login", target_type="operator", target_id="1", actor_email="carol@example.com")
        old.at = datetime(2020, 1, 1, 3, 0, tzinfo=UTC)
        db.session.commit()


def test_admins_filter_by_action_actor_target_and_day(app, client, auth):
    seed(app)
    auth.login("admin")
    by_action = client.get("/settings/audit/?action=auth.login_failed").get_data(as_text=True)
    assert "bob@example.com" in by_action and "carol@example.com" not in by_action
    by_actor = client.get("/settings/audit/?actor=carol").get_data(as_text=True)
    assert "carol@example.com" in by_actor and "bob@example.com" not in by_actor
    by_target = client.get("/settings/audit/?target=7").get_data(as_text=True)
    assert "alice@example.com" in by_target and "carol@example.com" not in by_target
    # 2020-01-01 03:00 UTC is 11:00 on 2020-01-01 in Shanghai, the operators' zone.
    by_day = client.get("/settings/audit/?since=2020-01-01&until=2020-01-01").get_data(as_text=True)
    assert "carol@example.com" in by_day and "bob@example.com" not in by_day
    assert "2020-01-01 11:00:00" in by_day


def test_htmx_gets_only_the_table(app, client, auth):
    seed(app)
    auth.login("admin")
    fragment = client.get("/settings/audit/?actor=bob", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert text.lstrip().startswith('<div id="audit-table">') and "<html" not in text
    assert "HX-Request" in fragment.headers["Vary"]


def test_events_are_timezone_aware_utc(app):
    seed(app)
    with app.app_context():
        event = db.session.scalars(db.select(AuditEvent)).first()
        assert event.at.tzinfo is not None and event.at.utcoffset().total_seconds() == 0


def test_the_pager_keeps_the_filter(app, client, auth):
    with app.app_context():
        for number in range(60):
            record(
                "operator.updated",
                target_type="operator",
                target_id=str(number),
                actor_email="bob@example.com",
            )
        db.session.commit()
    auth.login("admin")
    first = client.get("/settings/audit/?actor=bob").get_data(as_text=True)
    assert "1 / 2" in first and "actor=bob" in first and "page=2" in first
    second = client.get("/settings/audit/?actor=bob&page=2").get_data(as_text=True)
    assert "2 / 2" in second and "page=1" in second
