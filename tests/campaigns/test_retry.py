"""Retry transient failures: only failed rows of a retryable class go back to the queue, the engine sends
each of them once, and nothing sent, unknown or failed for good is touched; nobody is messaged twice."""

from __future__ import annotations

import collections
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.campaigns import retry, services
from dashboard.campaigns.states import InvalidTransition
from dashboard.dispatch import outcomes
from dashboard.extensions import db
from dashboard.models import AuditEvent, Delivery
from dashboard.models.campaign import CampaignState
from dashboard.models.types import utcnow
from tests.campaigns.helpers import campaign, campaign_states, prepared_campaign
from tests.campaigns.test_progress import shape, started


def rows(app, campaign_id: int) -> dict[int, tuple]:
    with app.app_context():
        return {
            r.id: (r.state.value, r.reason, r.errcode, r.sent_at, r.attempts)
            for r in db.session.scalars(sa.select(Delivery).where(Delivery.campaign_id == campaign_id))
        }


def test_only_failures_of_a_retryable_class_go_back_to_the_queue(app, sandbox, template):
    campaign_id = started(app, sandbox, template)
    ids = shape(app, campaign_id)
    before = rows(app, campaign_id)
    with app.app_context():
        assert retry.retryable_count(campaign_id) == 2
        assert retry.retry_failed(campaign_id) == 2
        db.session.commit()
    after = rows(app, campaign_id)
    # The transient -1 and the config failure (no errcode: its last attempt says config) are queued again.
    assert after[ids[6]][:3] == after[ids[7]][:3] == ("pending", "", None)
    assert after[ids[6]][4] == 8  # the attempt number (the fence) is kept
    changed = {i for i in ids if after[i] != before[i]}
    assert changed == {ids[6], ids[7]}  # sent, unknown, content, no_grant, skipped, pending: untouched


@pytest.mark.parametrize("state", [CampaignState.draft, CampaignState.scheduled, CampaignState.cancelled])
def test_a_campaign_that_is_not_running_paused_or_completed_refuses(app, sandbox, template, state):
    campaign_id, _ = prepared_campaign(app, sandbox, template, 2)
    with app.app_context():
        db.session.execute(
            sa.update(services.Campaign).where(services.Campaign.id == campaign_id).values(state=state)
        )
        db.session.commit()
        with pytest.raises(InvalidTransition):
            retry.retry_failed(campaign_id)


def hold(app, ids: list[int]) -> None:
    """Keep rows out of the claim's reach for now (as a backoff would)."""
    with app.app_context():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(state="retry_wait", not_before=utcnow() + timedelta(days=1))
        )
        db.session.commit()


def release(app, ids: list[int]) -> None:
    with app.app_context():
        db.session.execute(
            sa.update(Delivery).where(Delivery.id.in_(ids)).values(state="pending", not_before=None)
        )
        db.session.commit()


def test_retried_rows_are_sent_once_and_nobody_is_messaged_twice(
    app, sandbox, template, dispatcher, monkeypatch
):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 11)
    with app.app_context():
        services.launch(campaign_id)
        ids = list(
            db.session.scalars(
                sa.select(Delivery.id).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id)
            )
        )
        openid_of = dict(
            db.session.execute(sa.select(Delivery.id, Delivery.openid).where(Delivery.id.in_(ids))).all()
        )
    lost, sent, transient, content = ids[:2], ids[2:6], ids[6:10], ids[10:]
    # 1. Two sends reach the user but their answers are lost: unknown.
    hold(app, ids[2:])
    sandbox.faults(DROP_AFTER_READ_RATE=1.0)
    dispatcher.drain(20)
    # 2. Four are sent.
    sandbox.faults(DROP_AFTER_READ_RATE=0.0)
    release(app, sent)
    dispatcher.drain(20)
    # 3. Four fail with WeChat's "system busy" (-1) until the engine gives up (after one attempt here).
    monkeypatch.setattr(outcomes, "MAX_ATTEMPTS", 1)
    sandbox.faults(ERROR_RATE=1.0)
    release(app, transient)
    dispatcher.drain(20)
    # 4. One failed for its content (47003): a resend cannot fix it.
    with app.app_context():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(content))
            .values(state="failed", reason="content", errcode=47003)
        )
        db.session.commit()
        services.supervise()
    assert campaign_states(app, campaign_id) == {"unknown": 2, "sent": 4, "failed": 5}
    assert campaign(app, campaign_id).state == CampaignState.completed
    before = rows(app, campaign_id)
    assert {before[i][1] for i in transient} == {"gave_up"}

    monkeypatch.setattr(outcomes, "MAX_ATTEMPTS", 8)
    sandbox.faults(ERROR_RATE=0.0)
    with app.app_context():
        assert retry.retry_failed(campaign_id) == 4
        db.session.commit()
    assert campaign(app, campaign_id).state == CampaignState.running  # completed → running
    dispatcher.drain(20)
    with app.app_context():
        services.supervise()
    assert campaign(app, campaign_id).state == CampaignState.completed
    after = rows(app, campaign_id)
    assert {after[i][0] for i in transient} == {"sent"}
    for untouched in lost + sent + content:
        assert after[untouched] == before[untouched]
    delivered = collections.Counter(m["openid"] for m in sandbox.messages_all() if m["errcode"] == 0)
    assert delivered == collections.Counter(openid_of[i] for i in lost + sent + transient)
    assert max(delivered.values()) == 1


def test_the_button_names_how_many_and_needs_a_confirmation(app, client, auth, sandbox, template):
    campaign_id = started(app, sandbox, template)
    shape(app, campaign_id)
    auth.login("viewer")
    assert "retry-failed" not in client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert client.post(f"/campaigns/{campaign_id}/retry-failed", data={"confirm": "yes"}).status_code == 403
    auth.login("marketer")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "我确认：重新发送这 2 条" in page and f"/campaigns/{campaign_id}/retry-failed" in page
    unconfirmed = client.post(f"/campaigns/{campaign_id}/retry-failed", follow_redirects=True)
    assert "请勾选确认框" in unconfirmed.get_data(as_text=True)
    assert campaign_states(app, campaign_id)["failed"] == 5
    done = client.post(
        f"/campaigns/{campaign_id}/retry-failed", data={"confirm": "yes"}, follow_redirects=True
    )
    assert "已将 2 条失败的发送重新排队" in done.get_data(as_text=True)
    assert campaign_states(app, campaign_id)["failed"] == 3
    again = client.post(
        f"/campaigns/{campaign_id}/retry-failed", data={"confirm": "yes"}, follow_redirects=True
    )
    assert "没有可以重试的失败发送" in again.get_data(as_text=True)
    with app.app_context():
        event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event.action == "campaign.retry_failed"
