"""Each WeChat answer ends in the state and ledger change the dispatch contract lists, through the sandbox."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.claim import load_dispatch_state
from dashboard.dispatch.finalize import reconcile_expired_leases
from dashboard.dispatch.write_lock import write_transaction
from dashboard.extensions import db
from dashboard.models import Delivery, DeliverySource, DeliveryState, utcnow
from tests.dispatch.helpers import add_delivery, add_user, balance, grant, ledger_statuses, prepare, states
from tests.sandbox_api import example_data


def only_delivery(app) -> Delivery:
    with app.app_context():
        return db.session.scalars(sa.select(Delivery)).one()


def test_a_granted_send_is_sent_and_its_credit_spent(app, sandbox, dispatcher, template):
    [openid] = prepare(app, sandbox, 1, template)
    assert dispatcher.run_once().claimed == 1
    delivery = only_delivery(app)
    assert delivery.state == DeliveryState.sent and delivery.errcode == 0
    assert delivery.msgid == str(sandbox.messages()[-1]["msgid"])
    assert ledger_statuses(app, delivery.id) == ["spent"]
    assert balance(app, openid, template["priTmplId"]) == (0, False)


def test_43101_fails_the_row_and_zeroes_the_ledger(app, sandbox, dispatcher, template):
    # Our ledger believes in two credits; WeChat has none (the user revoked without us hearing).
    [openid] = prepare(app, sandbox, 1, template, sandbox_grants=0, our_grants=2)
    dispatcher.run_once()
    delivery = only_delivery(app)
    assert (
        delivery.state == DeliveryState.failed and delivery.errcode == 43101 and delivery.reason == "no_grant"
    )
    assert ledger_statuses(app, delivery.id) == ["reserved", "no_grant"]
    assert balance(app, openid, template["priTmplId"]) == (0, False)


@pytest.mark.parametrize(
    ("setup", "errcode", "category"),
    [
        ("bad_value", 47003, "content"),
        ("unknown_openid", 40003, "recipient"),
        ("unknown_template", 40037, "template"),
        ("bad_page", 41030, "page"),
    ],
)
def test_permanent_errors_fail_the_row_and_release_the_credit(
    app, sandbox, dispatcher, template, setup, errcode, category
):
    template_id = template["priTmplId"]
    data = example_data(template)
    openid = sandbox.openids()[0]
    extra = {}
    if setup == "bad_value":
        key = next(k for k in data if k.startswith("thing"))
        data[key] = "太长" * 11  # 22 characters: WeChat's limit is 20
    elif setup == "unknown_openid":
        openid = "o_not_a_user_of_this_mini_program"
    elif setup == "unknown_template":
        template_id = "not-a-template-id"
    else:
        extra["page"] = "pages/not/published"
    sandbox.grant(sandbox.openids()[0], template["priTmplId"])
    with app.app_context():
        user_id = add_user(openid)
        grant(user_id, template_id)
        add_delivery(openid, template_id, data, **extra)
        db.session.commit()
    dispatcher.run_once()
    delivery = only_delivery(app)
    assert (delivery.state, delivery.errcode, delivery.reason) == (DeliveryState.failed, errcode, category)
    assert ledger_statuses(app, delivery.id) == ["released"]
    assert balance(app, openid, template_id) == (1, False)


def test_system_busy_waits_to_retry_and_releases_the_credit(app, sandbox, dispatcher, template):
    [openid] = prepare(app, sandbox, 1, template)
    sandbox.faults(ERROR_RATE=1)
    dispatcher.run_once()
    delivery = only_delivery(app)
    assert delivery.state == DeliveryState.retry_wait and delivery.errcode == -1
    assert delivery.not_before > utcnow() + timedelta(seconds=2)
    assert ledger_statuses(app, delivery.id) == ["released"]
    assert balance(app, openid, template["priTmplId"]) == (1, False)
    # Not due yet: nothing is claimed. Once due, the retry goes out and succeeds.
    assert dispatcher.run_once().claimed == 0
    sandbox.faults(ERROR_RATE=0)
    with app.app_context():
        db.session.execute(sa.update(Delivery).values(not_before=utcnow()))
        db.session.commit()
    dispatcher.run_once()
    delivery = only_delivery(app)
    assert delivery.state == DeliveryState.sent and delivery.attempts == 2
    assert ledger_statuses(app, delivery.id) == ["released", "spent"]
    assert [a.outcome for a in db_history(app, delivery.id)] == [DeliveryState.retry_wait, DeliveryState.sent]


def db_history(app, delivery_id):
    with app.app_context():
        return list(db.session.get(Delivery, delivery_id).history)


def test_concurrent_send_to_the_same_user_is_43108_and_retried(app, sandbox, dispatcher, template):
    [openid] = prepare(app, sandbox, 1, template, sandbox_grants=2)
    sandbox.faults(CONCURRENCY_WINDOW_MS=5000)
    # Another system messages the same user a moment before us.
    with app.app_context():
        from dashboard.wechat import get_client

        get_client(app).send_subscribe_message(openid, template["priTmplId"], example_data(template))
    dispatcher.run_once()
    delivery = only_delivery(app)
    assert delivery.state == DeliveryState.retry_wait and delivery.errcode == 43108
    assert ledger_statuses(app, delivery.id) == ["released"]


def test_quota_exhausted_pauses_every_sender_until_wechats_next_day(app, sandbox, dispatcher, template):
    prepare(app, sandbox, 2, template)
    sandbox.faults(QUOTA_AFTER=0)
    dispatcher.run_once()
    assert states(app) == {"retry_wait": 2}
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        assert state.paused_until > utcnow() + timedelta(minutes=1) and "45009" in state.paused_reason
    assert dispatcher.run_once().paused_until is not None


def test_a_lost_answer_is_unknown_the_credit_spent_and_never_resent(app, sandbox, dispatcher, template):
    [openid] = prepare(app, sandbox, 1, template, sandbox_grants=2)
    sandbox.faults(DROP_AFTER_READ_RATE=1)
    dispatcher.run_once()
    delivery = only_delivery(app)
    assert delivery.state == DeliveryState.unknown and delivery.errcode is None
    assert ledger_statuses(app, delivery.id) == ["spent"]
    sandbox.faults(DROP_AFTER_READ_RATE=0)
    assert dispatcher.run_once().claimed == 0
    delivered = [m for m in sandbox.messages() if m["openid"] == openid and m["errcode"] == 0]
    assert len(delivered) == 1  # WeChat did deliver it: resending would have messaged the user twice


def test_a_worker_that_died_mid_send_leaves_rows_the_reconciler_calls_unknown(
    app, sandbox, dispatcher, template
):
    from dashboard.dispatch.claim import claim_due

    prepare(app, sandbox, 3, template)
    with app.app_context():
        batch = claim_due(db.engine, dispatcher.ledger, 10, lease_seconds=1)
    assert len(batch.claims) == 3 and states(app) == {"sending": 3}
    # ...the worker is killed here, before recording anything.
    with app.app_context():
        assert (
            reconcile_expired_leases(
                db.engine, dispatcher.ledger, now=utcnow() + timedelta(seconds=2)
            ).unknown
            == 3
        )
        for delivery in db.session.scalars(sa.select(Delivery)):
            assert delivery.state == DeliveryState.unknown and delivery.reason == "lease_expired"
            assert ledger_statuses(app, delivery.id) == ["spent"]
    assert dispatcher.run_once().claimed == 0


def test_long_term_grants_are_checked_not_spent(app, sandbox, dispatcher, long_term_template):
    [openid] = prepare(app, sandbox, 1, long_term_template)
    with app.app_context():
        add_delivery(openid, long_term_template["priTmplId"], example_data(long_term_template), campaign_id=2)
        db.session.commit()
    dispatcher.drain(10)
    assert states(app) == {"sent": 2}
    assert balance(app, openid, long_term_template["priTmplId"]) == (0, True)


def test_no_credit_in_our_ledger_skips_without_calling_wechat(app, sandbox, dispatcher, template):
    prepare(app, sandbox, 1, template, our_grants=0)
    dispatcher.run_once()
    delivery = only_delivery(app)
    assert (
        delivery.state == DeliveryState.skipped and delivery.reason == "no_grant" and delivery.attempts == 0
    )
    assert sandbox.messages() == []


def test_one_user_is_never_in_flight_twice(app, sandbox, dispatcher, template):
    [openid] = prepare(app, sandbox, 1, template, sandbox_grants=2, our_grants=2)
    with app.app_context():
        add_delivery(openid, template["priTmplId"], example_data(template), campaign_id=2)
        db.session.commit()
    assert dispatcher.run_once().claimed == 1  # the second row for the same openid waits its turn
    assert dispatcher.run_once().claimed == 1
    assert states(app) == {"sent": 2}


@pytest.mark.parametrize("sandbox_config", [{"USERS": 60}], indirect=True)
def test_token_expiry_mid_run_costs_one_refresh(app, sandbox, template):
    from dashboard.dispatch.engine import Dispatcher
    from dashboard.dispatch.ledger_adapter import grants_ledger

    prepare(app, sandbox, 40, template)
    workers = [Dispatcher(app, grants_ledger(), concurrency=4, batch_size=5) for _ in range(3)]
    try:
        workers[0].run_once()
        fetches_before = sandbox.stable_fetches()
        sandbox.expire_tokens()
        for _ in range(4):
            for worker in workers:
                worker.run_once()
        assert states(app) == {"sent": 40}
        assert sandbox.stable_fetches() == fetches_before + 1
    finally:
        for worker in workers:
            worker.close()


@pytest.mark.parametrize("sandbox_config", [{"USERS": 60}], indirect=True)
def test_the_rate_limit_is_shared_through_the_database(app, sandbox, dispatcher, template):
    prepare(app, sandbox, 30, template)
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        state.rate_per_second, state.tokens, state.tokens_at = 10, 0.0, utcnow()
    started = time.monotonic()
    sent = dispatcher.drain(2.0)
    elapsed = time.monotonic() - started
    # At most ten a second plus the one-second burst, however long the drain really took; at least one
    # (on a loaded machine the drain may get little of its two seconds, so no lower rate is promised).
    assert 1 <= sent <= 10 * elapsed + 10, (sent, elapsed)


def test_the_api_source_spends_the_credit_budget_campaigns_must_leave(app, sandbox, dispatcher, template):
    from dashboard.models.catalog import MessageTemplate

    [openid] = prepare(app, sandbox, 1, template, sandbox_grants=2, our_grants=1)
    with app.app_context():
        db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        ).credit_budget = 1
        add_delivery(openid, template["priTmplId"], example_data(template), source=DeliverySource.api)
        db.session.commit()
    dispatcher.drain(10)
    with app.app_context():
        by_source = dict(db.session.execute(sa.select(Delivery.source, Delivery.state)).all())
    assert by_source == {
        DeliverySource.campaign: DeliveryState.skipped,
        DeliverySource.api: DeliveryState.sent,
    }


def test_an_operator_can_force_an_unknown_delivery_out_again_with_a_warning(
    app, client, auth, sandbox, dispatcher, template
):
    [openid] = prepare(app, sandbox, 1, template, sandbox_grants=2, our_grants=2)
    sandbox.faults(DROP_AFTER_READ_RATE=1)
    dispatcher.run_once()
    sandbox.faults(DROP_AFTER_READ_RATE=0)
    unknown = only_delivery(app)
    assert unknown.state == DeliveryState.unknown
    auth.login("marketer")
    page = client.get(f"/deliveries/{unknown.id}").get_data(as_text=True)
    assert "用户可能已经收到了这条消息" in page and "强制重发" in page
    refused = client.post(f"/deliveries/{unknown.id}/resend", follow_redirects=True)
    assert "请勾选确认" in refused.get_data(as_text=True)
    assert states(app) == {"unknown": 1}
    client.post(f"/deliveries/{unknown.id}/resend", data={"confirm": "yes"})
    dispatcher.run_once()
    assert states(app) == {"unknown": 1, "sent": 1}
    assert balance(app, openid, template["priTmplId"]) == (0, False)  # the resend used a credit of its own
    auth.login("viewer")
    assert client.post(f"/deliveries/{unknown.id}/resend", data={"confirm": "yes"}).status_code == 403
