"""POST /api/v1/messages speaks channels: mp_subscribe (today's body), oa_template and mp_subscribe_or_oa.

Every refusal is checked before anything is written or WeChat is called (no delivery row, no call at the
sandbox's mini-program or Official Account); an accepted request is a delivery that carries the channel
asked and the Official Account's message, and the answer says which channel a worker used. The
end-to-end tests run the engine against the sandbox (a worker thread, ``?wait=``) and read the sandbox's
own send logs. Both databases; real HTTP to the sandbox, whose linked Official Account has followers
(users 4, 9, 14, 19 do not follow; even users have a unionid), three followers with no mini-program
user, and three templates.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Delivery, WechatUser
from dashboard.models.catalog import Drift, MessageTemplate
from dashboard.models.oa_template import OaTemplate
from dashboard.oa.followers import sync_followers
from dashboard.oa.templates import sync_oa_templates
from dashboard.wechat.oa import get_oa_client
from tests.api.live import sandbox_overrides
from tests.dispatch.helpers import grant, register
from tests.oa.helpers import SHIPPED_VALUES as OA_VALUES
from tests.oa.helpers import oa_get, oa_overrides, oa_sandbox_config
from tests.sandbox_api import example_data

SHIPPED_OA = "订单发货通知"  # first / keyword1-3 / remark
BILL_OA = "账单状态提醒"  # thing1 / amount2 / const3


@pytest.fixture
def sandbox_config() -> dict[str, Any]:
    return oa_sandbox_config()


@pytest.fixture
def config_overrides(sandbox) -> dict[str, Any]:
    """The mini-program and its linked Official Account."""
    return {**sandbox_overrides(sandbox), **oa_overrides(sandbox)}


@pytest.fixture
def api_key(app, runner):
    result = runner.invoke(args=["create-api-key", "orders", "--scope", "send", "--scope", "read"])
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def world(app, sandbox, template):
    """Tongzhi knows the sandbox's followers and OA templates, the subscribe template (scene
    ``order_shipped``), and four mini-program users with their unionids: ``credit`` (holds a credit,
    follows), ``follows`` (no credit, follows), ``neither`` (no credit, does not follow),
    ``credit_only`` (holds a credit, does not follow); ``follower_only`` is a follower's unionid with
    no mini-program user."""
    followers = oa_get(sandbox, "/followers")["followers"]
    by_mp = {f["mp_openid"]: f for f in followers if f["mp_openid"]}
    users = sandbox.openids_all()
    following = [o for o in users[::2] if by_mp[o]["subscribed"]]
    not_following = [o for o in users[::2] if not by_mp[o]["subscribed"]]
    people = {
        "credit": following[0],
        "follows": following[1],
        "neither": not_following[0],
        "credit_only": not_following[1],
    }
    for name in ("credit", "credit_only"):
        sandbox.grant(people[name], template["priTmplId"])
    with app.app_context():
        register(template)
        db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        ).scene = "order_shipped"
        ids = {}
        for name, openid in people.items():
            user = WechatUser(openid=openid, unionid=by_mp[openid]["unionid"])
            db.session.add(user)
            db.session.flush()
            ids[name] = user.id
        for name in ("credit", "credit_only"):
            grant(ids[name], template["priTmplId"])
        db.session.commit()
        sync_followers(get_oa_client())
        sync_oa_templates(get_oa_client())
        db.session.commit()
        oa_ids = {t.title: t.template_id for t in db.session.scalars(sa.select(OaTemplate))}
    only = next(f for f in followers if f["mp_openid"] is None and f["subscribed"])
    return {
        "openid": people,
        "unionid": {name: by_mp[openid]["unionid"] for name, openid in people.items()},
        "oa_openid": {name: by_mp[openid]["openid"] for name, openid in people.items()},
        "follower_only": only,
        "data": example_data(template),
        "oa_template": oa_ids[SHIPPED_OA],
        "bill_template": oa_ids[BILL_OA],
    }


def post(client, key, body, idempotency_key=None, query=""):
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(f"/api/v1/messages{query}", json=body, headers=headers)


def oa_message(world, **extra) -> dict[str, Any]:
    return {"template": world["oa_template"], "data": dict(OA_VALUES), **extra}


def fallback_body(world, who: str) -> dict[str, Any]:
    return {
        "openid": world["openid"][who],
        "channel": "mp_subscribe_or_oa",
        "template": "order_shipped",
        "data": world["data"],
        "page": "pages/order/detail?id=42",
        "oa": oa_message(world),
    }


def oa_body(world, who: str) -> dict[str, Any]:
    return {"openid": world["openid"][who], "channel": "oa_template", "oa": oa_message(world)}


def deliveries(app) -> list[Delivery]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(Delivery).order_by(Delivery.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def oa_sends(sandbox) -> list[dict[str, Any]]:
    return oa_get(sandbox, "/messages")["messages"]


def assert_nothing_happened(app, sandbox) -> None:
    assert deliveries(app) == []
    assert sandbox.messages() == [] and oa_sends(sandbox) == []


@contextmanager
def worker(dispatcher):
    """The engine, running as a worker does, while the block waits for an answer."""
    stop = threading.Event()

    def run():
        while not stop.is_set():
            dispatcher.run_once()
            stop.wait(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# -- refused before anything is written --------------------------------------------------------------


def mp(w, **extra):
    """Today's body (mp_subscribe), for the user who follows and holds no credit."""
    return {"openid": w["openid"]["follows"], "template": "order_shipped", "data": w["data"], **extra}


def oa(w, **extra):
    return {**oa_body(w, "follows"), **extra}


def both(w, **extra):
    return {**fallback_body(w, "follows"), **extra}


def without(body, name):
    return {k: v for k, v in body.items() if k != name}


def _refusals() -> list[tuple[str, Any, int, str, str]]:
    """(id, body from the world, status, code, field)."""
    return [
        ("unknown channel", lambda w: mp(w, channel="sms"), 422, "invalid_field", "channel"),
        ("oa_template without oa", lambda w: without(oa(w), "oa"), 422, "missing_field", "oa"),
        (
            "fallback without oa can never fall back",
            lambda w: without(both(w), "oa"),
            422,
            "missing_field",
            "oa",
        ),
        (
            "fallback without template",
            lambda w: without(both(w), "template"),
            422,
            "missing_field",
            "template",
        ),
        ("oa on mp_subscribe", lambda w: mp(w, oa=oa_message(w)), 422, "unexpected_field", "oa"),
        (
            "template on oa_template",
            lambda w: oa(w, template="order_shipped"),
            422,
            "unexpected_field",
            "template",
        ),
        ("lang on oa_template", lambda w: oa(w, lang="zh_CN"), 422, "unexpected_field", "lang"),
        ("oa not an object", lambda w: oa(w, oa="hello"), 422, "invalid_field", "oa"),
        (
            "unknown oa field",
            lambda w: oa(w, oa=oa_message(w, url="https://x")),
            422,
            "unexpected_field",
            "oa.url",
        ),
        ("oa without template", lambda w: oa(w, oa={"data": OA_VALUES}), 422, "missing_field", "oa.template"),
        (
            "oa data not strings",
            lambda w: oa(w, oa=oa_message(w, data={"first": 1})),
            422,
            "invalid_field",
            "oa.data",
        ),
        (
            "unknown OA template",
            lambda w: oa(w, oa=oa_message(w, template="nope")),
            404,
            "unknown_oa_template",
            "oa.template",
        ),
        (
            "unknown OA key",
            lambda w: oa(w, oa=oa_message(w, data={**OA_VALUES, "keyword9": "x"})),
            422,
            "unexpected_key",
            "oa.data.keyword9",
        ),
        (
            "OA value breaks the OA's rule",
            lambda w: oa(w, oa=oa_message(w, data={**OA_VALUES, "keyword1": ""})),
            422,
            "invalid_value.empty",
            "oa.data.keyword1",
        ),
        (
            "amount longer than the OA allows (12 digits)",
            lambda w: oa(
                w,
                oa={
                    "template": w["bill_template"],
                    "data": {"thing1": "水费", "amount2": "1234567890123", "const3": "待缴费"},
                },
            ),
            422,
            "invalid_value.too_many_digits",
            "oa.data.amount2",
        ),
        ("oa_template, not following", lambda w: oa_body(w, "neither"), 409, "not_following", "openid"),
        (
            "fallback, no credit and no follow",
            lambda w: fallback_body(w, "neither"),
            409,
            "no_channel",
            "channel",
        ),
        ("mp_subscribe keeps no_grant for a follower", lambda w: mp(w), 409, "no_grant", "template"),
        ("unknown openid", lambda w: oa(w, openid="nobody"), 404, "unknown_user", "openid"),
        (
            "unknown unionid",
            lambda w: {**without(oa(w), "openid"), "unionid": "oUnobody"},
            404,
            "unknown_user",
            "unionid",
        ),
        (
            "a follower with no mini-program user on mp_subscribe",
            lambda w: {**without(mp(w), "openid"), "unionid": w["follower_only"]["unionid"]},
            404,
            "unknown_user",
            "unionid",
        ),
        (
            "a follower with no mini-program user on the fallback",
            lambda w: {**without(both(w), "openid"), "unionid": w["follower_only"]["unionid"]},
            404,
            "unknown_user",
            "unionid",
        ),
    ]


REFUSALS = _refusals()


@pytest.mark.parametrize(
    ("make", "status", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSALS],
)
def test_refusals_name_the_field_and_write_nothing(
    app, client, api_key, world, sandbox, make, status, code, field
):
    answer = post(client, api_key, make(world), "refused-1")
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"], error["field"]) == (status, code, field), error
    assert error["message"]
    assert_nothing_happened(app, sandbox)


@pytest.mark.parametrize("drift", [Drift.removed, Drift.changed])
def test_a_removed_or_changed_oa_template_is_refused(app, client, api_key, world, sandbox, drift):
    with app.app_context():
        template = db.session.scalar(
            sa.select(OaTemplate).where(OaTemplate.template_id == world["oa_template"])
        )
        template.drift = drift
        db.session.commit()
    answer = post(client, api_key, oa_body(world, "follows"))
    error = answer.get_json()["error"]
    assert answer.status_code == 409 and error["code"] == f"oa_template_{drift.value}"
    assert error["field"] == "oa.template"
    assert_nothing_happened(app, sandbox)


@pytest.mark.parametrize("channel", ["oa_template", "mp_subscribe_or_oa"])
def test_the_official_account_switched_off_is_409_channel_off(app, client, api_key, world, sandbox, channel):
    app.config.update(WECHAT_OA_APPID=None, WECHAT_OA_SECRET=None)
    body = oa_body(world, "follows") if channel == "oa_template" else fallback_body(world, "credit")
    answer = post(client, api_key, body)
    error = answer.get_json()["error"]
    assert answer.status_code == 409 and error["code"] == "channel_off" and error["field"] == "channel"
    assert "WECHAT_OA_APPID" in error["message"]
    assert_nothing_happened(app, sandbox)
    # Today's body does not need the Official Account.
    mp = {"openid": world["openid"]["credit"], "template": "order_shipped", "data": world["data"]}
    assert post(client, api_key, mp).status_code == 202


# -- accepted: the delivery carries the channel and the OA message --------------------------------------


def test_an_oa_template_request_becomes_a_delivery_with_the_official_accounts_message(
    app, client, api_key, world, sandbox
):
    body = {**oa_body(world, "follows"), "page": "pages/order/detail?id=42"}
    body["oa"]["pagepath"] = "pages/order/list?id=42"
    answer = post(client, api_key, body)
    assert answer.status_code == 202
    message = answer.get_json()
    assert message["channel"] == "oa_template" and message["state"] == "pending"
    [row] = deliveries(app)
    assert (row.channel, row.channel_used, row.oa_template_id) == ("oa_template", None, world["oa_template"])
    assert row.oa_data == OA_VALUES and row.oa_pagepath == "pages/order/list?id=42"
    assert row.page == "pages/order/detail?id=42" and row.user_id is not None
    assert row.openid == world["openid"]["follows"] and row.oa_openid is None  # chosen at claim
    assert row.template_id == world["oa_template"] and row.data == {}
    got = client.get(f"/api/v1/messages/{message['id']}", headers={"Authorization": f"Bearer {api_key}"})
    assert got.get_json() == message
    assert sandbox.messages() == [] and oa_sends(sandbox) == []


def test_unionid_names_the_user_instead_of_openid(app, client, api_key, world):
    body = fallback_body(world, "follows")
    del body["openid"]
    body["unionid"] = world["unionid"]["follows"]
    answer = post(client, api_key, body)
    assert answer.status_code == 202 and answer.get_json()["channel"] == "mp_subscribe_or_oa"
    [row] = deliveries(app)
    with app.app_context():
        user = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == world["openid"]["follows"]))
        assert (row.user_id, row.openid) == (user.id, user.openid)
    assert row.template_id != world["oa_template"] and row.oa_template_id == world["oa_template"]
    assert row.oa_pagepath is None  # the card opens page


def test_a_follower_with_no_mini_program_user_is_a_person_for_oa_template(app, client, api_key, world):
    follower = world["follower_only"]
    body = {"unionid": follower["unionid"], "channel": "oa_template", "oa": oa_message(world)}
    answer = post(client, api_key, body)
    assert answer.status_code == 202 and answer.get_json()["channel"] == "oa_template"
    [row] = deliveries(app)
    assert row.user_id is None
    assert row.openid == row.oa_openid == follower["openid"]


def test_idempotency_covers_the_official_accounts_message(app, client, api_key, world):
    body = fallback_body(world, "follows")
    first = post(client, api_key, body, "order-42")
    assert first.status_code == 202
    again = post(client, api_key, body, "order-42")
    assert again.status_code == 202 and again.get_json()["id"] == first.get_json()["id"]
    other = {**body, "oa": oa_message(world, data={**OA_VALUES, "keyword1": "B99"})}
    conflict = post(client, api_key, other, "order-42")
    assert conflict.status_code == 409 and conflict.get_json()["error"]["code"] == "idempotency_conflict"
    other_channel = {**body, "channel": "oa_template"}
    del other_channel["template"], other_channel["data"]
    conflict = post(client, api_key, other_channel, "order-42")
    assert conflict.get_json()["error"]["code"] == "idempotency_conflict"
    assert len(deliveries(app)) == 1


def test_the_openapi_document_describes_channels(client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert schemas["SendRequest"]["properties"]["channel"]["enum"] == [
        "mp_subscribe",
        "oa_template",
        "mp_subscribe_or_oa",
    ]
    assert set(schemas["OaMessage"]["properties"]) == {"template", "data", "pagepath"}
    assert "channel" in schemas["Message"]["required"]
    conflicts = document["paths"]["/messages"]["post"]["responses"]["409"]["description"]
    for code in ("no_grant", "not_following", "no_channel", "channel_off", "oa_template_removed"):
        assert code in conflicts


# -- end to end: the engine sends on the channel it chose (needs the engine's OA path) ----------------


def test_the_fallback_spends_a_credit_when_the_user_holds_one(
    app, client, api_key, world, sandbox, dispatcher
):
    with worker(dispatcher):
        answer = post(client, api_key, fallback_body(world, "credit"), query="?wait=5")
    message = answer.get_json()
    assert answer.status_code == 200, message
    assert (message["state"], message["channel"]) == ("sent", "mp_subscribe"), message
    assert [m["openid"] for m in sandbox.messages()] == [world["openid"]["credit"]]
    assert oa_sends(sandbox) == []


def test_the_fallback_sends_through_the_official_account_without_a_credit(
    app, client, api_key, world, sandbox, dispatcher
):
    with worker(dispatcher):
        answer = post(client, api_key, fallback_body(world, "follows"), query="?wait=5")
    message = answer.get_json()
    assert answer.status_code == 200, message
    assert (message["state"], message["channel"]) == ("sent", "oa_template")
    assert sandbox.messages() == []
    [sent] = oa_sends(sandbox)
    assert sent["openid"] == world["oa_openid"]["follows"] and sent["template_id"] == world["oa_template"]
    assert sent["errcode"] == 0 and str(sent["msgid"]) == message["msgid"]
    assert sent["miniprogram"]["pagepath"] == "pages/order/detail?id=42"
    assert sent["client_msg_id"] == f"tongzhi-{message['id']}"
    assert oa_get(sandbox, "/state")["sends"]["delivered"] == 1


def test_oa_template_reaches_a_follower_with_no_mini_program_user(
    app, client, api_key, world, sandbox, dispatcher
):
    follower = world["follower_only"]
    body = {
        "unionid": follower["unionid"],
        "channel": "oa_template",
        "oa": oa_message(world, pagepath="pages/order/list"),
    }
    with worker(dispatcher):
        answer = post(client, api_key, body, query="?wait=5")
    message = answer.get_json()
    assert answer.status_code == 200 and message["state"] == "sent" and message["channel"] == "oa_template"
    [sent] = oa_sends(sandbox)
    assert sent["openid"] == follower["openid"] and sent["miniprogram"]["pagepath"] == "pages/order/list"
