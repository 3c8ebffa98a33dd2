"""The engine sends through both channels (issue 15 point 4): each asked channel x credit x follow ends as
``dispatch.channels.choose`` says, an Official Account message spends no credit and carries the delivery's
client_msg_id (the same on every attempt: the sandbox de-dups a resend), an unfollow before the claim
skips the row, 43004 fails it, and TEMPLATESENDJOBFINISH lands on the delivery whichever arrives first.
Both databases; real HTTP to the sandbox's linked Official Account."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sqlalchemy as sa

from dashboard.dispatch.claim import claim_due
from dashboard.dispatch.finalize import finalize
from dashboard.extensions import db
from dashboard.models import Channel, Delivery, DeliverySource, DeliveryState, WechatUser
from dashboard.models.oa import OaEvent
from dashboard.oa.followers import sync_followers
from dashboard.wechat.oa import get_oa_client
from tests.dispatch.helpers import grant, ledger_statuses, register
from tests.oa.helpers import OA_PUSH_TOKEN, oa_get, oa_post, oa_push_overrides, oa_sandbox_config
from tests.sandbox_api import example_data

OA_VALUES = {
    "first": "您的订单已发货",
    "keyword1": "A20240101001",
    "keyword2": "咖啡豆",
    "keyword3": "今天 12:00",
    "remark": "点击查看",
}
PAGE = "pages/index/index"


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    return oa_sandbox_config()


@pytest.fixture
def config_overrides(sandbox) -> dict[str, Any]:
    return oa_push_overrides(sandbox)


def oa_template_id(sandbox) -> str:
    return next(
        t["template_id"] for t in oa_get(sandbox, "/templates")["templates"] if t["title"] == "订单发货通知"
    )


def people(
    app, sandbox, follows: list[bool], template: dict | None = None, credits: list[bool] | None = None
):
    """Mini-program users (with their unionid) who follow the OA or not as ``follows`` says, the OA's
    followers synced; with ``credits``, a credit of ``template`` in both ledgers where True."""
    users = sandbox.get("/users", per_page=500)["users"][: len(follows)]
    for user, follow in zip(users, follows, strict=True):
        oa_post(sandbox, f"/users/{user['openid']}/{'follow' if follow else 'unfollow'}")
        if credits and credits[users.index(user)]:
            sandbox.grant(user["openid"], template["priTmplId"])
    with app.app_context():
        if template is not None:
            register(template)
        ids = []
        for index, user in enumerate(users):
            row = WechatUser(openid=user["openid"], unionid=user["unionid"])
            db.session.add(row)
            db.session.flush()
            ids.append(row.id)
            if credits and credits[index]:
                grant(row.id, template["priTmplId"])
        db.session.commit()
        sync_followers(get_oa_client())
    return [user["openid"] for user in users]


def add(app, openid: str, template: dict | None, channel: Channel, oa_template: str | None, **extra) -> int:
    with app.app_context():
        user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
        delivery = Delivery(
            source=DeliverySource.api,
            openid=openid,
            user_id=user_id,
            template_id=template["priTmplId"] if template else oa_template,
            data=example_data(template) if template else {},
            page=PAGE,
            channel=channel.value,
            oa_template_id=oa_template,
            oa_data=dict(OA_VALUES) if oa_template else None,
            **extra,
        )
        db.session.add(delivery)
        db.session.commit()
        return delivery.id


def rows(app) -> dict[int, Delivery]:
    with app.app_context():
        found = db.session.scalars(sa.select(Delivery)).all()
        for row in found:
            db.session.expunge(row)
        return {row.id: row for row in found}


def oa_sends(sandbox) -> dict[str, Any]:
    return oa_get(sandbox, "/state")["sends"]


def test_every_asked_channel_x_credit_x_follow(app, sandbox, dispatcher, template):
    oa_template = oa_template_id(sandbox)
    combos = [(c, credit, follow) for c in Channel for credit in (True, False) for follow in (True, False)]
    openids = people(
        app,
        sandbox,
        [follow for _, _, follow in combos] + [True],
        template,
        [credit for _, credit, _ in combos] + [False],
    )
    ids = {
        combo: add(app, openid, template, combo[0], oa_template)
        for combo, openid in zip(combos, openids, strict=False)
    }
    # A row that would fall back to the OA but names no OA template.
    bare = add(app, openids[-1], template, Channel.mp_subscribe_or_oa, None)
    mp_before = len(sandbox.messages_all())
    dispatcher.drain(10)

    found = rows(app)
    expected_mp, expected_oa = set(), set()
    for (channel, credit, follow), delivery_id in ids.items():
        row = found[delivery_id]
        if channel is Channel.mp_subscribe:
            outcome = ("sent", "mp_subscribe", "") if credit else ("skipped", None, "no_grant")
        elif channel is Channel.oa_template:
            outcome = ("sent", "oa_template", "") if follow else ("skipped", None, "not_following")
        elif credit:
            outcome = ("sent", "mp_subscribe", "")
        else:
            outcome = ("sent", "oa_template", "") if follow else ("skipped", None, "no_channel")
        assert (row.state.value, row.channel_used, row.reason) == outcome, (channel, credit, follow)
        if outcome[1] == "mp_subscribe":
            expected_mp.add(delivery_id)
            assert ledger_statuses(app, delivery_id) == ["spent"]
        else:
            # An OA message, or a row that went nowhere: the ledger never saw it (the refusal kept nothing).
            assert ledger_statuses(app, delivery_id) == []
        if outcome[1] == "oa_template":
            expected_oa.add(delivery_id)
    assert (found[bare].state, found[bare].reason) == (DeliveryState.skipped, "no_oa_template")

    # The sandbox's own counts: what each account received.
    assert len(sandbox.messages_all()) - mp_before == len(expected_mp) == 4
    assert oa_sends(sandbox)["delivered"] == len(expected_oa) == 3
    messages = {m["client_msg_id"]: m for m in oa_get(sandbox, "/messages")["messages"]}
    for delivery_id in expected_oa:
        row = found[delivery_id]
        message = messages[f"tongzhi-{delivery_id}"]
        assert message["openid"] == row.oa_openid and row.oa_openid != row.openid
        assert message["miniprogram"] == {"appid": app.config["WECHAT_APPID"], "pagepath": PAGE}
        assert str(message["msgid"]) == row.msgid


def test_client_msg_id_is_the_same_on_every_attempt_and_a_resend_is_not_delivered_twice(
    app, sandbox, dispatcher
):
    oa_template = oa_template_id(sandbox)
    (openid,) = people(app, sandbox, [True])
    delivery_id = add(app, openid, None, Channel.oa_template, oa_template, oa_pagepath="pages/order/detail")
    sandbox.faults(ERROR_RATE=1.0)
    dispatcher.run_once()
    assert rows(app)[delivery_id].state == DeliveryState.retry_wait
    sandbox.faults(ERROR_RATE=0.0)
    with app.app_context():
        db.session.execute(sa.update(Delivery).where(Delivery.id == delivery_id).values(not_before=None))
        db.session.commit()
    dispatcher.run_once()
    sent = rows(app)[delivery_id]
    assert (sent.state, sent.attempts) == (DeliveryState.sent, 2)
    # As if WeChat's answer had been read as "try again": a third attempt inside the de-dup window.
    with app.app_context():
        db.session.execute(
            sa.update(Delivery).where(Delivery.id == delivery_id).values(state="retry_wait", not_before=None)
        )
        db.session.commit()
    dispatcher.run_once()
    again = rows(app)[delivery_id]
    assert again.state == DeliveryState.sent and again.msgid == sent.msgid
    messages = oa_get(sandbox, "/messages")["messages"]
    assert [m["client_msg_id"] for m in messages] == [f"tongzhi-{delivery_id}"] * 3
    assert [m["errcode"] for m in messages] == [-1, 0, 0] and messages[2]["repeat"]
    assert messages[1]["miniprogram"]["pagepath"] == "pages/order/detail"
    assert oa_sends(sandbox)["delivered"] == 1


def push_to(sandbox, live_server) -> None:
    oa_post(
        sandbox,
        "/push-config",
        {"OA_PUSH_URL": f"{live_server}/wechat/oa-push", "OA_PUSH_TOKEN": OA_PUSH_TOKEN},
    )


def wait_pushes(sandbox) -> list[dict[str, Any]]:
    return oa_get(sandbox, "/pushes", wait=1)["pushes"]


def test_an_unfollow_between_the_snapshot_and_the_claim_skips_the_row(
    app, sandbox, dispatcher, template, live_server
):
    oa_template = oa_template_id(sandbox)
    first, second = people(app, sandbox, [True, True], template)
    only_oa = add(app, first, template, Channel.oa_template, oa_template)
    either = add(app, second, template, Channel.mp_subscribe_or_oa, oa_template)
    push_to(sandbox, live_server)
    for openid in (first, second):
        oa_post(sandbox, f"/users/{openid}/unfollow")  # pushed to /wechat/oa-push: Tongzhi learns it
    assert all(p["ok"] for p in wait_pushes(sandbox))
    dispatcher.drain(5)
    found = rows(app)
    assert (found[only_oa].state, found[only_oa].reason) == (DeliveryState.skipped, "not_following")
    assert (found[either].state, found[either].reason) == (DeliveryState.skipped, "no_channel")
    assert oa_sends(sandbox)["total"] == 0


def test_43004_from_wechat_fails_the_delivery_as_a_recipient_error(app, sandbox, dispatcher):
    oa_template = oa_template_id(sandbox)
    (openid,) = people(app, sandbox, [True])
    delivery_id = add(app, openid, None, Channel.oa_template, oa_template)
    oa_post(sandbox, f"/users/{openid}/unfollow")  # no push URL: Tongzhi still thinks they follow
    dispatcher.drain(5)
    row = rows(app)[delivery_id]
    assert (row.state, row.errcode, row.reason, row.channel_used) == (
        DeliveryState.failed,
        43004,
        "recipient",
        "oa_template",
    )
    assert oa_sends(sandbox)["by_errcode"] == {"43004": 1}
    assert ledger_statuses(app, delivery_id) == []


def joined_event(app, msgid: str) -> OaEvent:
    with app.app_context():
        event = db.session.scalar(sa.select(OaEvent).where(OaEvent.msgid == msgid))
        db.session.expunge(event)
        return event


def test_job_finish_after_the_answer_lands_on_the_delivery(app, client, sandbox, dispatcher):
    from tests.oa.test_oa_push import envelope, post

    oa_template = oa_template_id(sandbox)
    (openid,) = people(app, sandbox, [True])
    delivery_id = add(app, openid, None, Channel.oa_template, oa_template)
    dispatcher.drain(5)
    row = rows(app)[delivery_id]
    assert row.state == DeliveryState.sent and row.report_status is None
    from dashboard.sandbox.push import Event

    when = int(time.time())
    event = Event(
        "TEMPLATESENDJOBFINISH",
        row.oa_openid,
        when,
        fields={"MsgID": row.msgid, "Status": "failed:user block"},
    )
    assert post(client, envelope(app, event)).get_data(as_text=True) == "success"
    row = rows(app)[delivery_id]
    assert row.report_status == "failed:user block" and int(row.reported_at.timestamp()) == when
    assert row.report_errcode is None
    assert joined_event(app, row.msgid).delivery_id == delivery_id


def test_job_finish_before_the_answer_is_recorded_is_joined_by_finalize(
    app, sandbox, dispatcher, live_server
):
    oa_template = oa_template_id(sandbox)
    (openid,) = people(app, sandbox, [True])
    delivery_id = add(app, openid, None, Channel.oa_template, oa_template)
    push_to(sandbox, live_server)
    batch = claim_due(dispatcher.engine, dispatcher.ledger, 8)
    results = dispatcher.sender.send(batch.claims)  # WeChat answered; the answer is not recorded yet
    pushes = wait_pushes(sandbox)
    assert [p["event"] for p in pushes if p["ok"]][-1] == "TEMPLATESENDJOBFINISH"
    (result,) = results
    assert joined_event(app, result.msgid).delivery_id is None  # no delivery has the msgid yet
    assert rows(app)[delivery_id].report_status is None
    finalize(dispatcher.engine, dispatcher.ledger, results)
    row = rows(app)[delivery_id]
    assert (row.state, row.msgid, row.report_status) == (DeliveryState.sent, result.msgid, "success")
    assert joined_event(app, result.msgid).delivery_id == delivery_id


def test_an_oa_test_send_is_a_delivery(app, auth, client, sandbox, runner):
    from dashboard.models import AuditEvent
    from dashboard.models.oa_template import OaTemplate

    assert runner.invoke(args=["sync-templates"]).exit_code == 0
    (openid,) = people(app, sandbox, [True])
    with app.app_context():
        template = db.session.scalar(sa.select(OaTemplate).where(OaTemplate.title == "订单发货通知"))
        follower = oa_get(sandbox, "/followers")["followers"]
        oa_openid = next(f["openid"] for f in follower if f["mp_openid"] == openid)
    auth.login("marketer")
    form = {f"kw_{key}": value for key, value in OA_VALUES.items()}
    answer = client.post(
        f"/templates/official-account/{template.id}/test-send",
        data={**form, "openid": oa_openid, "pagepath": PAGE},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    with app.app_context():
        delivery = db.session.scalars(sa.select(Delivery)).one()
        audit = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "oa_template.test_sent")
        ).one()
        assert (delivery.source, delivery.channel, delivery.channel_used) == (
            DeliverySource.test,
            "oa_template",
            "oa_template",
        )
        assert (delivery.state, delivery.openid, delivery.oa_openid) == (
            DeliveryState.sent,
            openid,
            oa_openid,
        )
        assert delivery.requested_by_id is not None and delivery.oa_data == OA_VALUES
        assert audit.detail["delivery_id"] == delivery.id and audit.detail["msgid"] == delivery.msgid
    assert f"#{delivery.id}" in answer and delivery.msgid in answer
    assert ledger_statuses(app, delivery.id) == []
    message = oa_get(sandbox, "/messages")["messages"][-1]
    assert message["client_msg_id"] == f"tongzhi-{delivery.id}" and str(message["msgid"]) == delivery.msgid
    page = client.get("/deliveries/", query_string={"source": "test"}).get_data(as_text=True)
    assert f"/deliveries/{delivery.id}" in page


def test_reports_that_crossed_their_msgids_commit_are_joined_by_the_minute_tick(
    app, sandbox, dispatcher, template
):
    """On PostgreSQL the push's look for the msgid and finalize's look for early events can each run
    before the other commits; both events then wait unjoined. Recreated here as that outcome (the events
    written unjoined after the msgids are recorded); the tick's sweep joins them, and leaves alone an
    unjoined event older than its lookback and one whose msgid is no delivery's."""
    from datetime import timedelta

    from dashboard.dispatch.finalize import MISSED_REPORT_LOOKBACK
    from dashboard.models import utcnow
    from dashboard.models.grants import SentReport, WechatPush

    oa_template = oa_template_id(sandbox)
    first, second = people(app, sandbox, [True, True], template, credits=[False, True])
    via_oa = add(app, first, None, Channel.oa_template, oa_template)
    via_mp = add(app, second, template, Channel.mp_subscribe, None)
    older = add(app, first, None, Channel.oa_template, oa_template)
    dispatcher.drain(5)
    sent = rows(app)
    assert {sent[via_oa].state, sent[via_mp].state, sent[older].state} == {DeliveryState.sent}
    now = utcnow()
    with app.app_context():
        push = WechatPush(
            dedup_key="k", event="subscribe_msg_sent_event", openid=second, create_time=1, body_format="json"
        )
        db.session.add(push)
        db.session.flush()
        for msgid, when in ((sent[via_mp].msgid, now), ("999", now)):
            db.session.add(
                SentReport(
                    push_id=push.id,
                    msgid=msgid,
                    openid=second,
                    template_id="t",
                    errcode=0,
                    status="success",
                    reported_at=when,
                )
            )
        for n, (msgid, when) in enumerate(
            (
                (sent[via_oa].msgid, now),
                (sent[older].msgid, now - MISSED_REPORT_LOOKBACK - timedelta(minutes=1)),
            )
        ):
            db.session.add(
                OaEvent(
                    dedup_key=f"e{n}",
                    event="TEMPLATESENDJOBFINISH",
                    openid=first,
                    create_time=1_790_000_000 + n,
                    msgid=msgid,
                    status="failed:user block",
                    body_format="xml",
                    received_at=when,
                )
            )
        db.session.commit()

    app.extensions["dispatch_tasks"].tick.call_local()  # the worker's minute tick
    after = rows(app)
    assert after[via_mp].report_status == "success" and after[via_mp].report_errcode == 0
    assert after[via_oa].report_status == "failed:user block"
    with app.app_context():
        reports = dict(db.session.execute(sa.select(SentReport.msgid, SentReport.delivery_id)).all())
        assert reports == {sent[via_mp].msgid: via_mp, "999": None}
        events = dict(db.session.execute(sa.select(OaEvent.create_time, OaEvent.delivery_id)).all())
        assert events == {1_790_000_000: via_oa, 1_790_000_001: None}  # the old one is not looked at
    assert dispatcher.join_missed_reports() == 0  # joined once


def test_a_43101_on_the_either_channel_goes_through_the_official_account_next(
    app, sandbox, dispatcher, template
):
    """Our ledger holds a credit WeChat no longer honours (revoked, expired): the subscribe message is
    answered 43101. A row that asked ``mp_subscribe_or_oa`` then tries the Official Account: sent there
    to a follower, skipped ``no_channel`` for one who does not follow; a row that asked only
    ``mp_subscribe`` fails ``no_grant`` as before. Each user gets at most one message, the ledger is
    zeroed once, and every attempt is recorded with WeChat's answer."""
    from dashboard.models import DeliveryAttempt
    from dashboard.models.grants import GrantBalance

    oa_template = oa_template_id(sandbox)
    follower, stranger, only_mp = people(app, sandbox, [True, False, True], template)
    with app.app_context():  # credits in our ledger only: the sandbox (WeChat) holds none
        for openid in (follower, stranger, only_mp):
            user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == openid))
            grant(user_id, template["priTmplId"])
        db.session.commit()
    reached = add(app, follower, template, Channel.mp_subscribe_or_oa, oa_template)
    unreachable = add(app, stranger, template, Channel.mp_subscribe_or_oa, oa_template)
    failed = add(app, only_mp, template, Channel.mp_subscribe, oa_template)
    mp_before = len(sandbox.messages_all())
    dispatcher.drain(10)

    found = rows(app)
    assert (found[reached].state, found[reached].channel_used, found[reached].attempts) == (
        DeliveryState.sent,
        "oa_template",
        2,
    )
    assert (found[unreachable].state, found[unreachable].reason) == (DeliveryState.skipped, "no_channel")
    assert (found[failed].state, found[failed].reason, found[failed].errcode) == (
        DeliveryState.failed,
        "no_grant",
        43101,
    )
    with app.app_context():
        attempts = {
            delivery_id: [
                (a.outcome.value, a.errcode)
                for a in db.session.scalars(
                    sa.select(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_id == delivery_id)
                    .order_by(DeliveryAttempt.number)
                )
            ]
            for delivery_id in (reached, unreachable, failed)
        }
        balances = db.session.scalars(sa.select(GrantBalance.credits)).all()
    assert attempts == {
        reached: [("pending", 43101), ("sent", 0)],
        unreachable: [("pending", 43101)],
        failed: [("failed", 43101)],
    }
    assert balances == [0, 0, 0]
    for delivery_id in (reached, unreachable, failed):
        # The credit reserved for the subscribe message, then zeroed by the 43101: once each.
        assert ledger_statuses(app, delivery_id) == ["reserved", "no_grant"]
    # WeChat's side: three subscribe messages refused, one OA message delivered (to the follower).
    refused = sandbox.messages_all()[mp_before:]
    assert [m["errcode"] for m in refused] == [43101, 43101, 43101]
    assert oa_sends(sandbox)["delivered"] == 1
    (message,) = oa_get(sandbox, "/messages")["messages"]
    assert message["client_msg_id"] == f"tongzhi-{reached}"


def test_a_test_send_that_falls_back_is_sent_through_the_official_account_at_once(app, sandbox, template):
    """The operator's test send (``deliveries.services.send_now``) takes the same fallback in the same
    request: 43101 on the subscribe message, then the Official Account's message, one delivery."""
    from dashboard.deliveries.services import send_now

    oa_template = oa_template_id(sandbox)
    (follower,) = people(app, sandbox, [True], template)
    with app.test_request_context():
        user_id = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == follower))
        grant(user_id, template["priTmplId"])  # our ledger only
        db.session.commit()
        delivery = db.session.get(
            Delivery, add(app, follower, template, Channel.mp_subscribe_or_oa, oa_template)
        )
        sent = send_now(delivery)
        assert (sent.state, sent.channel_used, sent.attempts, sent.reason) == (
            DeliveryState.sent,
            "oa_template",
            2,
            "",
        )
    assert oa_sends(sandbox)["delivered"] == 1
    assert [m["errcode"] for m in sandbox.messages_all()] == [43101]
