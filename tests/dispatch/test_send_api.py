"""POST /api/v1/messages: validated before WeChat, 409 without a grant, idempotent, and sent by the engine."""

from __future__ import annotations

import json
import re
import threading

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState
from dashboard.models.catalog import MessageTemplate
from tests.dispatch.helpers import add_user, grant, register
from tests.sandbox_api import example_data


@pytest.fixture
def api_key(app, runner):
    result = runner.invoke(args=["create-api-key", "orders", "--scope", "send"])
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def read_key(app, runner):
    """A reporting back end's key: it may read every API message, and send none."""
    result = runner.invoke(args=["create-api-key", "reports", "--scope", "read_all"])
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def other_key(app, runner):
    """A second back end's send key."""
    result = runner.invoke(args=["create-api-key", "billing", "--scope", "send"])
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def shipped(app, sandbox, template):
    """The order-shipped template registered with a scene label, and a user granted in both ledgers."""
    openid = sandbox.openids()[0]
    sandbox.grant(openid, template["priTmplId"])
    with app.app_context():
        register(template)
        db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        ).scene = "order_shipped"
        grant(add_user(openid), template["priTmplId"])
        db.session.commit()
    return {"openid": openid, "template": template, "data": example_data(template)}


def post(client, key, body, idempotency_key=None, query=""):
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return client.post(f"/api/v1/messages{query}", json=body, headers=headers)


def test_a_send_is_accepted_then_sent_by_the_worker(app, client, api_key, shipped, dispatcher, sandbox):
    body = {"openid": shipped["openid"], "template": "order_shipped", "data": shipped["data"]}
    answer = post(client, api_key, body, "order-42-shipped")
    assert answer.status_code == 202
    message = answer.get_json()
    assert message == {
        "id": message["id"],
        "state": "pending",
        "channel": "mp_subscribe",
        "errcode": None,
        "errmsg": None,
        "msgid": None,
    }
    dispatcher.run_once()
    final = client.get(f"/api/v1/messages/{message['id']}", headers={"Authorization": f"Bearer {api_key}"})
    assert final.get_json()["state"] == "sent" and final.get_json()["errcode"] == 0
    assert final.get_json()["msgid"] == str(sandbox.messages()[-1]["msgid"])


def test_the_same_idempotency_key_never_sends_twice(app, client, api_key, shipped, dispatcher, sandbox):
    body = {"openid": shipped["openid"], "template": "order_shipped", "data": shipped["data"]}
    first = post(client, api_key, body, "order-7").get_json()
    dispatcher.run_once()
    again = post(client, api_key, body, "order-7")
    assert (
        again.status_code == 200
        and again.get_json()["id"] == first["id"]
        and again.get_json()["state"] == "sent"
    )
    dispatcher.run_once()
    assert len(sandbox.messages()) == 1
    other = post(client, api_key, {**body, "template": "something_else"}, "order-7")
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "idempotency_conflict"


def test_a_reused_idempotency_key_with_another_body_is_409_and_writes_nothing(
    app, client, api_key, shipped, sandbox
):
    body = {"openid": shipped["openid"], "template": "order_shipped", "data": shipped["data"]}
    first = post(client, api_key, body, "order-8")
    assert first.status_code == 202
    # Same user and template, other values: a different message, not a retry of the first.
    changed = {**body, "data": {**shipped["data"], next(iter(shipped["data"])): "B99"}}
    conflict = post(client, api_key, changed, "order-8")
    assert conflict.status_code == 409 and conflict.get_json()["error"]["code"] == "idempotency_conflict"
    # The same body in another key order and spacing is the same request: a replay.
    reordered = client.post(
        "/api/v1/messages",
        data=json.dumps(dict(reversed(list(body.items()))), indent=2),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "order-8"},
    )
    assert reordered.status_code == 202 and reordered.get_json()["id"] == first.get_json()["id"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 1


def test_idempotency_keys_belong_to_one_api_key(app, client, api_key, other_key, shipped):
    """Two back ends that happen to pick the same Idempotency-Key never see each other's message."""
    body = {"openid": shipped["openid"], "template": "order_shipped", "data": shipped["data"]}
    mine = post(client, api_key, body, "42")
    other_values = {**shipped["data"], next(iter(shipped["data"])): "B99"}
    theirs = post(client, other_key, {**body, "data": other_values}, "42")
    assert mine.status_code == theirs.status_code == 202
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    with app.app_context():
        owners = dict(db.session.execute(sa.select(Delivery.id, Delivery.api_key_id)).all())
        assert owners[mine.get_json()["id"]] != owners[theirs.get_json()["id"]]


def test_a_key_reads_only_the_messages_it_sent_unless_it_may_read_all(
    app, client, api_key, other_key, read_key, runner, shipped
):
    body = {"openid": shipped["openid"], "template": "order_shipped", "data": shipped["data"]}
    message_id = post(client, api_key, body).get_json()["id"]
    plain_read = runner.invoke(args=["create-api-key", "plain", "--scope", "read"]).output.strip()
    plain_read = plain_read.splitlines()[-1]

    def read(key, delivery_id=message_id):
        return client.get(f"/api/v1/messages/{delivery_id}", headers={"Authorization": f"Bearer {key}"})

    assert read(api_key).status_code == 200
    assert read(read_key).status_code == 200 and read(read_key).get_json()["id"] == message_id
    # Another back end's key gets exactly what a message that does not exist gets: a 404, not a 403.
    missing = read(api_key, message_id + 1000)
    for stranger in (other_key, plain_read):
        refused = read(stranger)
        assert refused.status_code == missing.status_code == 404
        assert refused.get_json() == missing.get_json()


def test_wait_returns_the_final_state(app, client, api_key, shipped, dispatcher):
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            dispatcher.run_once()
            stop.wait(0.05)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        body = {
            "openid": shipped["openid"],
            "template": shipped["template"]["priTmplId"],
            "data": shipped["data"],
        }
        answer = post(client, api_key, body, query="?wait=10")
    finally:
        stop.set()
        thread.join()
    assert answer.status_code == 200 and answer.get_json()["state"] == "sent"


def test_an_invalid_value_is_422_naming_the_key_and_rule_without_calling_wechat(
    app, client, api_key, shipped, sandbox
):
    data = dict(shipped["data"])
    key = next(k for k in data if k.startswith("thing"))
    data[key] = "太长" * 11
    answer = post(client, api_key, {"openid": shipped["openid"], "template": "order_shipped", "data": data})
    error = answer.get_json()["error"]
    assert (
        answer.status_code == 422
        and error["field"] == f"data.{key}"
        and error["code"] == "invalid_value.too_long"
    )
    assert key in error["message"] and "20" in error["message"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0
    assert sandbox.messages() == []


def test_no_live_grant_is_409_no_grant_without_calling_wechat(app, client, api_key, shipped, sandbox):
    other = sandbox.openids()[1]
    with app.app_context():
        add_user(other)
        db.session.commit()
    answer = post(client, api_key, {"openid": other, "template": "order_shipped", "data": shipped["data"]})
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "no_grant"
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ([1, 2], 400, "bad_request"),
        ({"template": "order_shipped", "data": {}}, 422, "missing_field"),
        ({"openid": "x", "unionid": "y", "template": "order_shipped"}, 422, "missing_field"),
        ({"openid": "o", "template": "order_shipped", "data": {"k": 1}}, 422, "invalid_field"),
        ({"openid": "o", "template": "order_shipped", "lang": "fr"}, 422, "invalid_field"),
        ({"openid": "o", "template": "order_shipped", "colour": "red"}, 422, "unexpected_field"),
        ({"openid": "nobody", "template": "order_shipped"}, 404, "unknown_user"),
    ],
)
def test_bad_requests_get_the_documented_json_error(client, api_key, shipped, body, status, code):
    answer = post(client, api_key, body)
    assert answer.status_code == status and answer.get_json()["error"]["code"] == code


def test_unknown_or_drifted_templates_are_refused(app, client, api_key, shipped):
    body = {"openid": shipped["openid"], "template": "nope", "data": shipped["data"]}
    assert post(client, api_key, body).get_json()["error"]["code"] == "unknown_template"
    with app.app_context():
        db.session.scalar(sa.select(MessageTemplate)).drift = "removed"
        db.session.commit()
    answer = post(client, api_key, {**body, "template": "order_shipped"})
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "template_removed"


def test_keys_are_required_scoped_and_revocable(app, client, api_key, read_key, shipped, auth):
    body = {"openid": shipped["openid"], "template": "order_shipped", "data": shipped["data"]}
    assert client.post("/api/v1/messages", json=body).status_code == 401
    assert post(client, "tz_forged", body).status_code == 401
    assert post(client, read_key, body).status_code == 403
    message = post(client, api_key, body).get_json()
    assert (
        client.get(
            f"/api/v1/messages/{message['id']}", headers={"Authorization": f"Bearer {read_key}"}
        ).status_code
        == 200
    )
    auth.login("admin")
    page = client.get("/settings/api-keys/").get_data(as_text=True)
    key_id = re.search(r"/settings/api-keys/(\d+)/revoke", page).group(1)
    client.post(f"/settings/api-keys/{key_id}/revoke", data={"confirm": "y"})
    assert post(client, api_key, body).status_code == 401


def test_the_openapi_document_matches_the_routes(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    routes = {
        (
            # <int:delivery_id>, <int:campaign_id>, ... are the document's {id}; <openid> is {openid}.
            re.sub(r"<(\w+)>", r"{\1}", re.sub(r"<int:\w+>", "{id}", rule.rule.removeprefix("/api/v1"))),
            method,
        )
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api_v1.openapi"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routes


def test_delivery_state_words_are_the_glossarys(app):
    with app.app_context():
        assert {state.value for state in DeliveryState} == {
            "pending",
            "sending",
            "sent",
            "failed",
            "skipped",
            "unknown",
            "retry_wait",
        }
