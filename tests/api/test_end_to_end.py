"""The issue's walk-through, over real HTTP: the WeChat sandbox on loopback, Tongzhi on a live server.

A simulated user logs in (a wx.login code minted by the sandbox → POST /api/mp/session), answers one
subscribe prompt in the sandbox (two accepts, one reject), and the mini-program forwards the success
object to POST /api/mp/grants. The sandbox pushes its popup event for the same prompt to
/wechat/push. The ledger counts each accept once, whatever arrives first and however often.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models.grants import GrantEvent, GrantReport, WechatPush
from dashboard.sandbox.push import Event, PushSettings, build_envelope
from tests.api.live import AES_KEY, PUSH_TOKEN, MiniProgram


def point_pushes_at(sandbox, live_server, **settings):
    # The app has an EncodingAESKey (tests.api.live), so it accepts secure mode only.
    secure = {"PUSH_MODE": "secure", "PUSH_AES_KEY": AES_KEY}
    sandbox.post(
        "/push-config",
        {"PUSH_URL": f"{live_server}/wechat/push", "PUSH_TOKEN": PUSH_TOKEN, **secure, **settings},
    )


def one_time_templates(sandbox, count=3):
    return [t["priTmplId"] for t in sandbox.templates(2)[:count]]


def ledger_size(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(GrantEvent))


def sandbox_credits(sandbox, openid):
    return {row["template_id"]: row["credits"] for row in sandbox.get("/credits", openid=openid)["credits"]}


@pytest.mark.parametrize(
    "push_format,push_mode",
    [("json", "plaintext"), ("xml", "plaintext"), ("json", "secure"), ("xml", "secure")],
)
def test_two_accepts_and_a_reject_give_1_1_0_once_whatever_is_repeated(
    app, live_server, sandbox, push_format, push_mode
):
    # Plaintext pushes are accepted only when no EncodingAESKey is configured.
    app.config["WECHAT_PUSH_AES_KEY"] = AES_KEY if push_mode == "secure" else None
    point_pushes_at(
        sandbox,
        live_server,
        PUSH_FORMAT=push_format,
        PUSH_MODE=push_mode,
        PUSH_AES_KEY=AES_KEY if push_mode == "secure" else None,
    )
    openid = sandbox.openids()[0]
    mp = MiniProgram(live_server, sandbox, openid)
    session = mp.login()
    assert session["expires_in"] > 0 and "session_key" not in session

    order, refund, meeting = one_time_templates(sandbox)
    result = mp.prompt({order: "accept", refund: "accept", meeting: "reject"})
    assert result["errMsg"] == "requestSubscribeMessage:ok"
    key = mp.new_key()
    first = mp.report(result, key)
    assert first.status_code == 200, first.text

    # The sandbox's popup event for the same prompt reached Tongzhi (signed, maybe encrypted).
    pushes = sandbox.get("/pushes", wait=1)["pushes"]
    assert [(p["event"], p["ok"], p["status"]) for p in pushes] == [("subscribe_msg_popup_event", True, 200)]

    balances = mp.balances()
    assert {tid: balances[tid]["credits"] for tid in (order, refund, meeting)} == {
        order: 1,
        refund: 1,
        meeting: 0,
    }
    assert balances[order]["active"] and not balances[meeting]["active"]
    assert {tid: balances[tid]["kind"] for tid in balances} == dict.fromkeys(balances, "one_time")
    # Tongzhi's ledger agrees with WeChat's (the sandbox's) own.
    assert sandbox_credits(sandbox, openid) == {order: 1, refund: 1, meeting: 0}

    # The same report again with the same Idempotency-Key: the same answer, nothing recorded.
    events_before = ledger_size(app)
    again = mp.report(result, key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert ledger_size(app) == events_before

    # WeChat delivering the same popup event again (a retry) changes nothing either.
    body = pushes[0]["body"]
    settings = PushSettings(
        url="",
        fmt=push_format,
        mode=push_mode,
        token=PUSH_TOKEN,
        aes_key=AES_KEY,
        appid=sandbox.appid,
        original_id="gh_sandbox00000",
    )
    event = _event_from_body(body, push_format, push_mode, openid)
    envelope = build_envelope(event, settings)
    retry = requests.post(
        f"{live_server}/wechat/push",
        params=envelope.params,
        data=envelope.body,
        headers={"Content-Type": envelope.content_type},
        timeout=10,
    )
    assert retry.status_code == 200 and retry.text == "success"
    assert ledger_size(app) == events_before
    assert {tid: g["credits"] for tid, g in mp.balances().items()} == {order: 1, refund: 1, meeting: 0}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WechatPush)) == 1
        assert db.session.scalar(select(func.count()).select_from(GrantReport)) == 1
        events = db.session.scalars(select(GrantEvent).order_by(GrantEvent.id)).all()
        # Three answers from each source, and each popup answer paired with the client's (or vice versa).
        assert sorted(e.source for e in events) == ["client"] * 3 + ["popup_event"] * 3
        assert sum(e.credit_delta for e in events) == 2
        assert sum(1 for e in events if e.pairs_with_id) == 3


def _event_from_body(body: str, push_format: str, push_mode: str, openid: str) -> Event:
    """Rebuild the Event the sandbox pushed from the body it logged (JSON or XML, maybe encrypted)."""
    import json

    from defusedxml import ElementTree as ET

    from dashboard.sandbox.push import decrypt

    if push_mode == "secure":
        encrypted = (
            json.loads(body)["Encrypt"] if push_format == "json" else ET.fromstring(body).findtext("Encrypt")
        )
        body = decrypt(AES_KEY, encrypted)[0].decode()
    if push_format == "json":
        data = json.loads(body)
        items = data["List"] if isinstance(data["List"], list) else [data["List"]]
        return Event(data["Event"], openid, int(data["CreateTime"]), items)
    root = ET.fromstring(body)
    items = [{leaf.tag: leaf.text or "" for leaf in entry} for entry in root.iter("List")]
    return Event(root.findtext("Event"), openid, int(root.findtext("CreateTime")), items)


def test_a_second_prompt_adds_a_second_credit_and_the_report_may_come_before_the_event(
    app, live_server, sandbox
):
    openid = sandbox.openids()[1]
    mp = MiniProgram(live_server, sandbox, openid)
    mp.login()
    order = one_time_templates(sandbox, 1)[0]
    # First prompt: pushes off, so the client report is first; the event is delivered afterwards.
    first = mp.prompt({order: "accept"})
    assert mp.report(first, mp.new_key()).status_code == 200
    assert mp.balances()[order]["credits"] == 1
    point_pushes_at(sandbox, live_server)
    second = mp.prompt({order: "accept"})
    sandbox.get("/pushes", wait=1)
    assert mp.balances()[order]["credits"] == 1  # only the event so far: it credits, the report will pair
    assert mp.report(second, mp.new_key()).status_code == 200
    assert mp.balances()[order]["credits"] == 2
    assert sandbox_credits(sandbox, openid) == {order: 2}


def test_a_change_event_reject_zeroes_the_credits(app, live_server, sandbox):
    point_pushes_at(sandbox, live_server)
    openid = sandbox.openids()[2]
    mp = MiniProgram(live_server, sandbox, openid)
    mp.login()
    order, refund = one_time_templates(sandbox, 2)
    for _ in range(3):
        mp.report(mp.prompt({order: "accept", refund: "accept"}), mp.new_key())
    sandbox.get("/pushes", wait=1)
    assert {t: g["credits"] for t, g in mp.balances().items()} == {order: 3, refund: 3}

    sandbox.post(f"/users/{openid}/turn-off", {"template_id": order})
    pushes = sandbox.get("/pushes", wait=1)["pushes"]
    assert pushes[-1]["event"] == "subscribe_msg_change_event" and pushes[-1]["status"] == 200
    balances = mp.balances()
    assert balances[order]["credits"] == 0 and balances[order]["active"] is False
    assert balances[refund]["credits"] == 3
    with app.app_context():
        withdrawal = db.session.scalars(select(GrantEvent).where(GrantEvent.source == "change_event")).one()
        assert (withdrawal.status, withdrawal.credit_delta, withdrawal.credits_after) == ("reject", -3, 0)


def test_a_forged_push_signature_gets_403_and_changes_nothing(app, live_server, sandbox):
    openid = sandbox.openids()[3]
    order = one_time_templates(sandbox, 1)[0]
    # The sandbox signs with a token Tongzhi does not know: every push is refused.
    sandbox.post("/push-config", {"PUSH_URL": f"{live_server}/wechat/push", "PUSH_TOKEN": "not-the-token"})
    sandbox.post(f"/users/{openid}/prompt", {"templates": {order: "accept"}})
    pushes = sandbox.get("/pushes", wait=1)["pushes"]
    assert pushes[-1]["status"] == 403 and not pushes[-1]["ok"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(GrantEvent)) == 0
        assert db.session.scalar(select(func.count()).select_from(WechatPush)) == 0
    # And the console's URL check fails the same way, while the right token passes it.
    assert sandbox.post("/push/verify")["status"] == 403
    sandbox.post("/push-config", {"PUSH_TOKEN": PUSH_TOKEN})
    verified = sandbox.post("/push/verify")
    assert verified["ok"] and verified["status"] == 200


def test_a_sent_event_is_kept_and_joined_to_its_delivery(app, live_server, sandbox):
    from dashboard.deliveries.services import create_delivery, send_now
    from dashboard.models import Delivery, DeliverySource
    from dashboard.models.grants import SentReport
    from dashboard.push.services import attach_sent_report
    from tests.sandbox_api import example_data

    point_pushes_at(sandbox, live_server)
    openid = sandbox.openids()[4]
    template = sandbox.templates(2)[0]
    sandbox.grant(openid, template["priTmplId"])
    # The popup event gives Tongzhi's ledger the credit the test send reserves: let it land first.
    assert sandbox.get("/pushes", wait=1)["pushes"][-1]["status"] == 200
    with app.app_context():
        delivery = create_delivery(
            source=DeliverySource.test,
            openid=openid,
            template_id=template["priTmplId"],
            data=example_data(template),
        )
        db.session.commit()
        send_now(delivery)
        delivery_id, msgid = delivery.id, delivery.msgid
    assert msgid
    pushes = sandbox.get("/pushes", wait=1)["pushes"]
    assert pushes[-1]["event"] == "subscribe_msg_sent_event" and pushes[-1]["status"] == 200
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        # The event may have been applied before send_now committed the msgid: the sender then joins it
        # (once) with attach_sent_report, and a report already joined is not joined again.
        joined_late = attach_sent_report(delivery)
        db.session.commit()
        assert attach_sent_report(delivery) is False
        assert (delivery.report_errcode, delivery.report_status) == (0, "success"), joined_late
        assert delivery.reported_at is not None
        report = db.session.scalars(select(SentReport)).one()
        assert (report.msgid, report.delivery_id) == (msgid, delivery_id)
