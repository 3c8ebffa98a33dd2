"""WeChat's delivery event (subscribe_msg_sent_event) settles an ``unknown`` delivery, through the real
/wechat/push endpoint: the sandbox's own push after a send whose answer was lost, or a signed push built
the way the sandbox builds them (WeChat reports failures only this way)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.engine import Dispatcher
from dashboard.dispatch.finalize import reconcile_expired_leases
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState, utcnow
from dashboard.models.grants import SentReport
from dashboard.sandbox.push import Event, PushSettings, build_envelope
from tests.api.live import AES_KEY, PUSH_TOKEN
from tests.dispatch.helpers import add_delivery, balance, ledger_statuses, prepare, register
from tests.sandbox_api import example_data


@pytest.fixture
def dispatcher(app):
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=4, lease_seconds=60)
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


def only_delivery(app) -> Delivery:
    with app.app_context():
        return db.session.scalars(sa.select(Delivery)).one()


def sent_event(openid: str, template_id: str, code: str, status: str, when: int | None = None) -> Event:
    item = {"TemplateId": template_id, "MsgID": "3187654321098765", "ErrorCode": code, "ErrorStatus": status}
    return Event("subscribe_msg_sent_event", openid, when or int(time.time()), [item])


def push(client, event: Event):
    """Signed and encrypted as WeChat does in secure mode (the app has an EncodingAESKey)."""
    settings = PushSettings(
        url="",
        fmt="json",
        mode="secure",
        token=PUSH_TOKEN,
        aes_key=AES_KEY,
        appid=client.application.config["WECHAT_APPID"],
        original_id="gh_t",
    )
    envelope = build_envelope(event, settings)
    response = client.post(
        "/wechat/push",
        query_string=envelope.params,
        data=envelope.body,
        headers={"Content-Type": envelope.content_type},
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def lost_answer(app, sandbox, dispatcher, template) -> tuple[str, int]:
    """One send that reached WeChat (the sandbox) but whose answer was lost: an unknown delivery."""
    [openid] = prepare(app, sandbox, 1, template)
    sandbox.faults(DROP_AFTER_READ_RATE=1.0)
    dispatcher.run_once()
    sandbox.faults(DROP_AFTER_READ_RATE=0)
    delivery = only_delivery(app)
    assert delivery.state == DeliveryState.unknown and delivery.msgid is None
    return openid, delivery.id


def test_the_sandboxs_own_event_confirms_a_send_whose_answer_was_lost(
    app, client, auth, sandbox, dispatcher, template, live_server
):
    [openid] = prepare(app, sandbox, 1, template)
    # Pushes from here on (the grant's popup event is not what this test is about).
    sandbox.post(
        "/push-config",
        {
            "PUSH_URL": f"{live_server}/wechat/push",
            "PUSH_TOKEN": PUSH_TOKEN,
            "PUSH_MODE": "secure",
            "PUSH_AES_KEY": AES_KEY,
        },
    )
    sandbox.faults(DROP_AFTER_READ_RATE=1.0)
    dispatcher.run_once()  # delivered, connection dropped: unknown (unless the event came first)
    assert sandbox.server.sandbox.pusher.wait_idle(10)
    delivery = only_delivery(app)
    [message] = [m for m in sandbox.messages_all() if m["openid"] == openid]
    assert delivery.state == DeliveryState.sent and delivery.reason == "sent_event"
    assert delivery.msgid == str(message["msgid"]) and delivery.errcode == 0
    assert (delivery.report_errcode, delivery.report_status) == (0, "success")
    # The unknown had already counted its credit as spent: nothing more happens in the ledger.
    assert ledger_statuses(app, delivery.id) == ["spent"]
    assert balance(app, openid, template["priTmplId"]) == (0, False)
    auth.login("viewer")
    page = client.get(f"/deliveries/{delivery.id}").get_data(as_text=True)
    assert "结果已由微信的下发结果事件" in page


@pytest.mark.parametrize(
    "code,status,state,statuses,credits",
    [
        ("0", "success", DeliveryState.sent, ["spent"], 0),
        ("10001", "failed: system failed", DeliveryState.failed, ["spent", "released"], 1),
    ],
)
def test_a_pushed_event_settles_an_unknown_as_sent_or_failed(
    app, client, sandbox, dispatcher, template, code, status, state, statuses, credits
):
    openid, delivery_id = lost_answer(app, sandbox, dispatcher, template)
    # Another template, or a time long after the attempt: not this delivery's event.
    push(client, sent_event(openid, "someOtherTemplateId000000000000000000000000", code, status))
    push(client, sent_event(openid, template["priTmplId"], code, status, when=int(time.time()) + 3600))
    assert only_delivery(app).state == DeliveryState.unknown
    push(client, sent_event(openid, template["priTmplId"], code, status))
    delivery = only_delivery(app)
    assert delivery.state == state and delivery.reason == "sent_event"
    assert delivery.errcode == int(code) and delivery.msgid == "3187654321098765"
    assert ledger_statuses(app, delivery_id) == statuses
    assert balance(app, openid, template["priTmplId"]) == (credits, False)
    with app.app_context():
        joined = db.session.scalars(sa.select(SentReport).where(SentReport.delivery_id == delivery_id)).all()
    assert [(r.errcode, r.template_id) for r in joined] == [(int(code), template["priTmplId"])]
    # WeChat repeats a push it thinks was lost: the same event again changes nothing.
    push(client, sent_event(openid, template["priTmplId"], code, status))
    assert ledger_statuses(app, delivery_id) == statuses


def test_an_event_that_arrives_while_the_lost_worker_still_holds_the_row_settles_it_at_reconcile(
    app, client, sandbox, dispatcher, template
):
    """A killed worker's row stays ``sending`` until its lease runs out; WeChat's event comes within
    seconds. It waits unjoined, and the reconciler settles the row with it instead of calling it unknown."""
    from dashboard.dispatch.claim import claim_due

    [openid] = prepare(app, sandbox, 1, template)
    with app.app_context():
        [claim] = claim_due(db.engine, dispatcher.ledger, 10, lease_seconds=1).claims
    push(client, sent_event(openid, template["priTmplId"], "0", "success"))
    assert only_delivery(app).state == DeliveryState.sending  # maybe another send's event: not joined yet
    with app.app_context():
        lost = reconcile_expired_leases(db.engine, dispatcher.ledger, now=utcnow() + timedelta(seconds=2))
    assert lost.unknown == 1
    delivery = only_delivery(app)
    assert delivery.state == DeliveryState.sent and delivery.reason == "sent_event"
    assert ledger_statuses(app, claim.id) == ["spent"]


def test_an_event_never_settles_a_delivery_it_cannot_be_about(app, client, sandbox, dispatcher, template):
    openid, delivery_id = lost_answer(app, sandbox, dispatcher, template)
    with app.app_context():
        register(template)
        add_delivery(openid, template["priTmplId"], example_data(template), campaign_id=2)
        db.session.commit()
    # An event dated before the attempt started is about an earlier send.
    push(client, sent_event(openid, template["priTmplId"], "0", "success", when=int(time.time()) - 600))
    with app.app_context():
        states = dict(db.session.execute(sa.select(Delivery.id, Delivery.state)).all())
    assert states[delivery_id] == DeliveryState.unknown
    assert sorted(s.value for s in states.values()) == ["pending", "unknown"]
