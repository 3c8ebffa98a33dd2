"""``/api/v1/segments``: save with a count, read with the reach per template, errors in the API's shape."""

from __future__ import annotations

import json

import pytest

from dashboard.extensions import db
from dashboard.models.catalog import MessageTemplate, TemplateKind
from tests.api.live import key_for
from tests.segments.conftest import T_ONE, oracle


@pytest.fixture
def headers(runner):
    return key_for(runner, "campaigns")


def post(client, headers, body):
    return client.post(
        "/api/v1/segments", data=json.dumps(body), headers=headers, content_type="application/json"
    )


def test_create_then_read_with_reach(app, client, headers, people):
    with app.app_context():
        db.session.add(
            MessageTemplate(
                template_id=T_ONE,
                title="t",
                kind=TemplateKind.one_time,
                content="{{thing1.DATA}}",
                source="sync",
            )
        )
        db.session.commit()
    doc = {"all": [{"tag": "vip"}, {"not": {"main_switch": False}}]}
    expected = sum(oracle(doc, p) for p in people)
    response = post(client, headers, {"name": "VIPs", "filter": doc})
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created == {"id": created["id"], "name": "VIPs", "count": expected}
    answer = client.get(
        f"/api/v1/segments/{created['id']}", query_string={"template_id": T_ONE}, headers=headers
    )
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["count"] == expected
    assert set(body["unreachable"]) == {"no_credit", "budget", "main_switch_off", "always_reject"}
    assert body["reachable"] + sum(body["unreachable"].values()) == expected
    assert body["unreachable"]["main_switch_off"] == 0  # the filter left them out
    plain = client.get(f"/api/v1/segments/{created['id']}", headers=headers).get_json()
    assert plain["count"] == expected and "reachable" not in plain


@pytest.mark.parametrize(
    "doc,field,named",
    [
        ({"all": [{"tag": "a"}, {"sparkle": 1}]}, "filter.all[1]", "sparkle"),
        ({"attribute": {"key": "city", "op": "resembles", "value": "x"}}, "filter.attribute.op", "resembles"),
    ],
)
def test_an_unknown_leaf_or_operator_is_a_422_naming_it(app, client, headers, doc, field, named):
    response = post(client, headers, {"name": "x", "filter": doc})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_filter" and error["field"] == field and named in error["message"]


def test_errors_are_english_json_whatever_the_language(app, client, headers):
    response = client.post(
        "/api/v1/segments",
        data=json.dumps({"name": "x", "filter": {"tag": 3.5}}),
        headers={**headers, "Accept-Language": "zh-CN"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["message"] == "Must be text."


def test_names_are_unique_and_refusals_write_nothing(app, client, headers):
    assert post(client, headers, {"name": "Same", "filter": {"all": []}}).status_code == 201
    again = post(client, headers, {"name": "same", "filter": {"all": []}})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "name_taken"
    assert post(client, headers, {"name": "", "filter": {"all": []}}).status_code == 422
    assert post(client, headers, {"name": "x", "filter": {"all": []}, "extra": 1}).status_code == 422
    assert post(client, headers, {"name": "x"}).status_code == 422
    with app.app_context():
        from sqlalchemy import func, select

        from dashboard.models import Segment

        assert db.session.scalar(select(func.count()).select_from(Segment)) == 1


def test_scope_and_not_found(app, client, runner, headers):
    other = key_for(runner, "send")
    assert post(client, other, {"name": "x", "filter": {"all": []}}).status_code == 403
    assert client.get("/api/v1/segments/1").status_code == 401
    missing = client.get("/api/v1/segments/999", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    created = post(client, headers, {"name": "x", "filter": {"all": []}}).get_json()
    unknown = client.get(f"/api/v1/segments/{created['id']}?template_id=TMPL_nope", headers=headers)
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "unknown_template"
