"""Admins set the shared sending rate and per-worker concurrency, and can lift a quota pause."""

from datetime import timedelta

from dashboard.dispatch.claim import load_dispatch_state
from dashboard.dispatch.write_lock import write_transaction
from dashboard.extensions import db
from dashboard.models import utcnow


def dispatch_state(app):
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        return state.rate_per_second, state.concurrency, state.paused_until


def test_an_admin_sets_the_limits_and_bad_values_are_form_errors(app, client, auth):
    auth.login("admin")
    assert "发送限制" in client.get("/settings/").get_data(as_text=True)
    assert (
        client.post(
            "/settings/sending-limits", data={"rate_per_second": "50", "concurrency": "8"}
        ).status_code
        == 302
    )
    assert dispatch_state(app)[:2] == (50, 8)
    bad = client.post("/settings/sending-limits", data={"rate_per_second": "0", "concurrency": "lots"})
    assert bad.status_code == 200 and 'class="error"' in bad.get_data(as_text=True)
    assert dispatch_state(app)[:2] == (50, 8)


def test_a_quota_pause_shows_and_can_be_lifted(app, client, auth):
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        state.paused_until, state.paused_reason = utcnow() + timedelta(hours=3), "45009: quota"
    auth.login("admin")
    assert "发送已暂停" in client.get("/settings/").get_data(as_text=True)
    client.post("/settings/resume-sending")
    assert dispatch_state(app)[2] is None


def test_marketers_cannot_change_limits(client, auth):
    auth.login("marketer")
    assert (
        client.post("/settings/sending-limits", data={"rate_per_second": "1", "concurrency": "1"}).status_code
        == 403
    )
