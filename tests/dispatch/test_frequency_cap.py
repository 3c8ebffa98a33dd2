"""The frequency cap: at most N campaign messages per user in a rolling window (default 3 in 7 days), counted
at claim time across every campaign; a capped row is skipped ``frequency_cap`` and the user keeps the credit.
API and test sends are not capped and do not count."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import sqlalchemy as sa

from dashboard.campaigns import services
from dashboard.dispatch.claim import claim_due, load_dispatch_state
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.dispatch.write_lock import write_transaction
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, DeliveryState, Operator, WechatUser, utcnow
from dashboard.models.audit import AuditEvent
from dashboard.models.grants import GrantEvent
from tests.campaigns.helpers import prepared_campaign
from tests.dispatch.helpers import add_delivery, add_user, balance, grant, register
from tests.sandbox_api import example_data


def granted(app, sandbox, template, credits: int, count: int = 1) -> list[str]:
    """``count`` users holding ``credits`` credits for ``template`` in both ledgers."""
    openids = sandbox.openids_all()[:count]
    with app.app_context():
        register(template)
        for openid in openids:
            sandbox.grant(openid, template["priTmplId"], credits)
            grant(add_user(openid), template["priTmplId"], credits)
        db.session.commit()
    return openids


def queue(app, openid: str, template: dict, campaign_id: int | None, **extra) -> int:
    """One pending delivery of campaign ``campaign_id`` (None with ``source``: an API or test send)."""
    with app.app_context():
        if campaign_id is None:
            extra.setdefault("source", DeliverySource.api)
        delivery_id = add_delivery(
            openid, template["priTmplId"], example_data(template), campaign_id=campaign_id, **extra
        )
        db.session.commit()
        return delivery_id


def row(app, delivery_id: int) -> tuple[str, str]:
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        return delivery.state.value, delivery.reason


def set_cap(app, messages: int, days: int = 7) -> None:
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session, lock=True)
        state.frequency_cap_messages, state.frequency_cap_days = messages, days


def sent_ago(app, delivery_ids: list[int], days: float) -> None:
    """Move these sends back in time, as if they had gone out ``days`` ago."""
    with app.app_context():
        then = utcnow() - timedelta(days=days)
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(delivery_ids))
            .values(sent_at=then, attempt_started_at=then, created_at=then)
        )
        db.session.commit()


def test_the_fourth_campaign_message_in_a_week_is_skipped_and_the_credit_kept(
    app, sandbox, dispatcher, template
):
    [openid] = granted(app, sandbox, template, credits=6)
    template_id = template["priTmplId"]
    first = [queue(app, openid, template, campaign_id) for campaign_id in (1, 2, 3)]
    dispatcher.drain(seconds=20)
    assert [row(app, i) for i in first] == [("sent", "")] * 3
    sent_ago(app, first, days=6)  # still inside the 7 days
    assert balance(app, openid, template_id) == (3, False)
    fourth = queue(app, openid, template, 4)
    round_ = dispatcher.run_once()
    assert (round_.claimed, round_.skipped) == (0, 1)
    assert row(app, fourth) == ("skipped", "frequency_cap")
    # The credit is untouched: no reservation was ever written for it, and the balance did not move.
    with app.app_context():
        assert not db.session.scalar(sa.select(sa.func.count()).where(GrantEvent.delivery_id == fourth))
    assert balance(app, openid, template_id) == (3, False)
    assert len(sandbox.messages_all()) == 3
    # Eight days after those three, the window holds none of them: the next campaign message goes out.
    sent_ago(app, first, days=8)
    fifth = queue(app, openid, template, 5)
    assert dispatcher.run_once().claimed == 1
    assert row(app, fifth) == ("sent", "")
    assert balance(app, openid, template_id) == (2, False)


def test_unknown_counts_failed_skipped_api_and_test_sends_do_not(app, sandbox, dispatcher, template):
    [openid] = granted(app, sandbox, template, credits=9)
    now = utcnow()
    with app.app_context():
        user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
        common = {"user_id": user_id, "openid": openid, "template_id": template["priTmplId"], "data": {}}
        db.session.add_all(
            [
                # Two that count: one sent, one whose answer was lost (it may have arrived).
                Delivery(source=DeliverySource.campaign, campaign_id=11, state=DeliveryState.sent, sent_at=now, **common),
                Delivery(
                    source=DeliverySource.campaign, campaign_id=12, state=DeliveryState.unknown,
                    attempt_started_at=now, **common,
                ),
                # None of these does: failed, skipped, an unknown older than the window, API and test sends.
                Delivery(source=DeliverySource.campaign, campaign_id=13, state=DeliveryState.failed, **common),
                Delivery(
                    source=DeliverySource.campaign, campaign_id=14, state=DeliveryState.skipped,
                    reason="no_grant", **common,
                ),
                Delivery(
                    source=DeliverySource.campaign, campaign_id=15, state=DeliveryState.unknown,
                    attempt_started_at=now - timedelta(days=8), **common,
                ),
                *[Delivery(source=DeliverySource.api, state=DeliveryState.sent, sent_at=now, **common) for _ in range(4)],
                Delivery(source=DeliverySource.test, state=DeliveryState.sent, sent_at=now, **common),
            ]
        )  # fmt: skip
        db.session.commit()
    third = queue(app, openid, template, 16)
    assert dispatcher.run_once().claimed == 1
    assert row(app, third) == ("sent", "")
    # Now three count: the next campaign message is capped, while API sends still go out.
    fourth = queue(app, openid, template, 17)
    assert dispatcher.run_once().skipped == 1
    assert row(app, fourth) == ("skipped", "frequency_cap")
    api_sends = [queue(app, openid, template, None, idempotency_key=f"k{n}") for n in range(2)]
    dispatcher.drain(seconds=20)
    assert [row(app, i) for i in api_sends] == [("sent", "")] * 2


def test_two_rows_of_one_user_with_one_slot_left_one_is_sent_one_skipped(app, sandbox, dispatcher, template):
    [openid] = granted(app, sandbox, template, credits=5)
    earlier = [queue(app, openid, template, campaign_id) for campaign_id in (1, 2)]
    dispatcher.drain(seconds=20)
    both = [queue(app, openid, template, campaign_id) for campaign_id in (3, 4)]
    dispatcher.drain(seconds=20)
    assert [row(app, i) for i in earlier + both] == [("sent", "")] * 3 + [("skipped", "frequency_cap")]
    assert len(sandbox.messages_all()) == 3
    assert balance(app, openid, template["priTmplId"]) == (2, False)


def test_within_one_claimed_batch_the_rows_already_taken_count(app, sandbox, template):
    """Two rows of one user under two openids reach the same claim: only one may pass the last slot."""
    [openid, other_openid] = granted(app, sandbox, template, credits=3, count=2)
    set_cap(app, 1)
    with app.app_context():
        user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
        ids = []
        for campaign_id, row_openid in ((1, openid), (2, other_openid)):
            delivery = Delivery(
                source=DeliverySource.campaign, campaign_id=campaign_id, user_id=user_id, openid=row_openid,
                template_id=template["priTmplId"], data=example_data(template),
            )  # fmt: skip
            db.session.add(delivery)
            db.session.flush()
            ids.append(delivery.id)
        db.session.commit()
        batch = claim_due(db.engine, grants_ledger(), 8)
    assert [claim.id for claim in batch.claims] == [ids[0]]
    # The other waits for the next claim, which counts the first (in flight) and skips it.
    assert row(app, ids[1]) == ("pending", "")
    with app.app_context():
        again = claim_due(db.engine, grants_ledger(), 8)
    assert (again.claims, again.skipped) == ([], 1)
    assert row(app, ids[1]) == ("skipped", "frequency_cap")


def test_cap_zero_turns_it_off(app, sandbox, dispatcher, template):
    [openid] = granted(app, sandbox, template, credits=5)
    set_cap(app, 0)
    ids = [queue(app, openid, template, campaign_id) for campaign_id in range(1, 6)]
    dispatcher.drain(seconds=30)
    assert [row(app, i) for i in ids] == [("sent", "")] * 5


def test_a_claim_waiting_for_the_lock_counts_what_the_holder_committed(app, sandbox, template):
    """Two claimers at once: the second counts after the first commits (the dispatch-state lock)."""
    [openid] = granted(app, sandbox, template, credits=3)
    earlier = [queue(app, openid, template, campaign_id) for campaign_id in (1, 2)]
    sent_ago(app, earlier, days=1)
    with app.app_context():
        db.session.execute(sa.update(Delivery).values(state=DeliveryState.sent))
        db.session.commit()
    waiting = queue(app, openid, template, 3)
    results = {}
    with app.app_context():
        engine, ledger = db.engine, grants_ledger()
        user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
        db.session.commit()
        with write_transaction(engine) as holder:
            load_dispatch_state(holder, lock=True)

            def claim():
                results["batch"] = claim_due(engine, ledger, 8)

            thread = threading.Thread(target=claim)
            thread.start()
            time.sleep(0.5)
            assert thread.is_alive()  # it waits for the holder
            # A third campaign message for the user, committed by the holder while the other claim waits.
            holder.add(
                Delivery(
                    source=DeliverySource.campaign, campaign_id=9, user_id=user_id, openid=openid,
                    template_id=template["priTmplId"], data={}, state=DeliveryState.sent, sent_at=utcnow(),
                )
            )  # fmt: skip
        thread.join(30)
    assert results["batch"].claims == [] and results["batch"].skipped == 1
    assert row(app, waiting) == ("skipped", "frequency_cap")


def test_admins_set_the_cap_in_settings(app, client, auth, personas):
    auth.login("admin")
    page = client.get("/settings/").get_data(as_text=True)
    assert "发送频次上限" in page and "每位用户在任意 7 天内最多收到 3 条群发消息" in page
    assert 'name="frequency_cap_messages"' in page and 'value="3"' in page
    saved = client.post(
        "/settings/frequency-cap", data={"frequency_cap_messages": "2", "frequency_cap_days": "14"}
    )
    assert saved.status_code == 302
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        assert (state.frequency_cap_messages, state.frequency_cap_days) == (2, 14)
        event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event.action == "sending_limits.updated"
    for bad in ({"frequency_cap_messages": "-1", "frequency_cap_days": "7"}, {"frequency_cap_messages": "3", "frequency_cap_days": "0"}, {"frequency_cap_messages": "x"}):  # fmt: skip
        answer = client.post("/settings/frequency-cap", data=bad)
        assert answer.status_code == 200 and 'class="error"' in answer.get_data(as_text=True)
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        assert (state.frequency_cap_messages, state.frequency_cap_days) == (2, 14)
    assert (
        client.post(
            "/settings/frequency-cap", data={"frequency_cap_messages": "0", "frequency_cap_days": "7"}
        ).status_code
        == 302
    )
    assert "不限制发送频次" in client.get("/settings/").get_data(as_text=True)
    # The audit log names what changed in words.
    assert "每位用户的群发消息数" in client.get("/settings/audit/").get_data(as_text=True)
    with app.app_context():
        db.session.get(Operator, personas["admin"].id).locale = "en"
        db.session.commit()
    english = client.get("/settings/").get_data(as_text=True)
    assert "Frequency cap" in english and "no frequency cap" in english
    auth.login("marketer")
    assert (
        client.post(
            "/settings/frequency-cap", data={"frequency_cap_messages": "9", "frequency_cap_days": "7"}
        ).status_code
        == 403
    )


def test_the_campaign_report_and_the_deliveries_name_the_reason(
    app, client, auth, sandbox, template, dispatcher
):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 3)
    # The first user already had three campaign messages this week.
    with app.app_context():
        user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openids[0]))
        for earlier in (101, 102, 103):
            db.session.add(
                Delivery(
                    source=DeliverySource.campaign, campaign_id=earlier, user_id=user_id, openid=openids[0],
                    template_id=template["priTmplId"], data={}, state=DeliveryState.sent, sent_at=utcnow(),
                )
            )  # fmt: skip
        db.session.commit()
        services.launch(campaign_id)
    dispatcher.drain(seconds=30)
    with app.app_context():
        states = dict(
            db.session.execute(
                sa.select(Delivery.openid, Delivery.reason).where(Delivery.campaign_id == campaign_id)
            ).all()
        )
    assert states == {openids[0]: "frequency_cap", openids[1]: "", openids[2]: ""}
    auth.login("viewer")
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert ">已达发送频次上限</text>" in page and ">frequency_cap<" not in page
    log = client.get("/deliveries/?reason=frequency_cap").get_data(as_text=True)
    assert "已达发送频次上限" in log and openids[0] in log and openids[1] not in log
    assert ">frequency_cap<" not in log
