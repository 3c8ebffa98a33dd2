"""``/api/v1/users`` and ``/api/v1/attributes``: upserts one and in batches, declared and typed attributes,
merge and replace semantics, the users scope, and the set-based write (statements per batch, not per row)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import event, select

from dashboard.extensions import db
from dashboard.models import WechatUser
from tests.api.live import key_for


@pytest.fixture
def headers(runner):
    return key_for(runner, "users")


def put(client, headers, path, body):
    return client.put(path, data=json.dumps(body), headers=headers, content_type="application/json")


def batch(client, headers, users):
    return client.post(
        "/api/v1/users/batch",
        data=json.dumps({"users": users}),
        headers=headers,
        content_type="application/json",
    )


@pytest.fixture
def declared(client, headers):
    for key, kind in [
        ("city", "string"),
        ("points", "number"),
        ("member", "bool"),
        ("membership_expires_at", "date"),
        ("last_order_at", "datetime"),
    ]:
        response = put(client, headers, f"/api/v1/attributes/{key}", {"type": kind, "label": key.title()})
        assert response.status_code == 201, response.get_json()


def stored(app, openid):
    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
        return None if user is None else (user.tags, user.attributes, user.nickname, user.unionid)


def test_put_creates_then_updates_merging_attributes_and_replacing_tags(app, client, headers, declared):
    body = {
        "attributes": {"city": "上海", "points": 12, "member": True, "membership_expires_at": "2027-01-31"},
        "tags": ["vip", " new ", "vip"],
        "nickname": "小明",
        "unionid": "union_1",
    }
    first = put(client, headers, "/api/v1/users/o_user_1", body)
    assert first.status_code == 201, first.get_json()
    user = first.get_json()
    assert user["openid"] == "o_user_1"
    assert user["tags"] == ["vip", "new"]
    assert user["attributes"]["city"] == "上海"
    assert stored(app, "o_user_1") == (
        ["vip", "new"],
        {"city": "上海", "points": 12, "member": True, "membership_expires_at": "2027-01-31"},
        "小明",
        "union_1",
    )
    second = put(
        client,
        headers,
        "/api/v1/users/o_user_1",
        {"attributes": {"points": 13.5, "city": None}, "tags": ["old"]},
    )
    assert second.status_code == 200, second.get_json()
    tags, attributes, nickname, unionid = stored(app, "o_user_1")
    assert tags == ["old"]
    assert attributes == {"points": 13.5, "member": True, "membership_expires_at": "2027-01-31"}
    assert (nickname, unionid) == ("小明", "union_1")  # left out: kept
    # Tags left out are kept too; the same PUT again is idempotent.
    again = put(client, headers, "/api/v1/users/o_user_1", {"attributes": {"points": 13.5}})
    assert again.status_code == 200
    assert again.get_json() == second.get_json()
    assert stored(app, "o_user_1")[0] == ["old"]


def test_a_datetime_is_stored_in_the_console_zone_so_date_filters_see_the_local_day(
    app, client, headers, declared
):
    response = put(
        client, headers, "/api/v1/users/o_dt", {"attributes": {"last_order_at": "2026-12-31T16:30:00Z"}}
    )
    assert response.status_code == 201, response.get_json()
    assert stored(app, "o_dt")[1] == {"last_order_at": "2027-01-01T00:30:00+08:00"}
    with app.app_context():
        from dashboard.audience.segments import count_users
        from dashboard.models import utcnow

        doc = {"attribute": {"key": "last_order_at", "op": "after", "value": "2026-12-31"}}
        assert count_users(doc, utcnow()) == 1


def test_an_undeclared_key_is_an_error_naming_it(app, client, headers, declared):
    response = put(client, headers, "/api/v1/users/o_x", {"attributes": {"citty": "上海"}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "unknown_attribute"
    assert "citty" in error["message"] and error["field"] == "attributes.citty"
    assert stored(app, "o_x") is None  # nothing written


@pytest.mark.parametrize(
    "key,kind,value",
    [
        ("city", "string", 5),
        ("city", "string", "x" * 257),
        ("points", "number", "12"),
        ("points", "number", True),
        ("member", "bool", "yes"),
        ("member", "bool", 1),
        ("membership_expires_at", "date", "2027-02-30"),
        ("membership_expires_at", "date", "20270131"),
        ("membership_expires_at", "date", 20270131),
        ("last_order_at", "datetime", "2026-12-31T16:30:00"),  # no offset
        ("last_order_at", "datetime", "2026-12-31"),
        ("last_order_at", "datetime", "2026-12-31T25:00:00Z"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_key_and_type(
    app, client, headers, declared, key, kind, value
):
    response = put(client, headers, "/api/v1/users/o_y", {"attributes": {key: value}})
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid_attribute_value"
    assert key in error["message"] and kind in error["message"]
    assert stored(app, "o_y") is None


def test_null_deletes_an_undeclared_key_kept_from_older_data(app, client, headers, declared):
    with app.app_context():
        db.session.add(WechatUser(openid="o_old", attributes={"legacy": "x", "city": "北京"}, tags=[]))
        db.session.commit()
    response = put(client, headers, "/api/v1/users/o_old", {"attributes": {"legacy": None, "points": 1}})
    assert response.status_code == 200, response.get_json()
    assert stored(app, "o_old")[1] == {"city": "北京", "points": 1}


def test_a_batch_reports_a_bad_row_and_stores_the_good_ones(app, client, headers, declared):
    put(client, headers, "/api/v1/users/o_b2", {"attributes": {"city": "北京", "points": 1}, "tags": ["a"]})
    response = batch(
        client,
        headers,
        [
            {"openid": "o_b1", "attributes": {"city": "上海"}, "tags": ["vip"]},
            {"openid": "o_b2", "attributes": {"points": 2}},
            {"openid": "o_bad", "attributes": {"points": "many"}},
            {"openid": "o_bad2", "attributes": {"nope": 1}},
            {"openid": "not an openid"},
            "not an object",
            {"openid": "o_b1", "attributes": {"member": False}},  # the same user again: applied after
        ],
    )
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [
        "created",
        "updated",
        "error",
        "error",
        "error",
        "error",
        "updated",
    ]
    assert (
        results[2]["error"]["code"] == "invalid_attribute_value"
        and "points" in results[2]["error"]["message"]
    )
    assert results[3]["error"]["code"] == "unknown_attribute" and "nope" in results[3]["error"]["message"]
    assert results[4]["openid"] == "not an openid" and results[4]["error"]["code"] == "invalid_openid"
    assert results[5]["openid"] is None
    assert stored(app, "o_b1")[:2] == (["vip"], {"city": "上海", "member": False})
    assert stored(app, "o_b2")[:2] == (["a"], {"city": "北京", "points": 2})
    assert stored(app, "o_bad") is None and stored(app, "o_bad2") is None


def test_a_batch_of_1001_users_is_refused_whole(app, client, headers, declared):
    response = batch(client, headers, [{"openid": f"o_{i}"} for i in range(1001)])
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "too_many_users"
    with app.app_context():
        assert db.session.scalar(select(sa.func.count()).select_from(WechatUser)) == 0


def test_a_batch_is_written_in_a_few_statements_whatever_its_size(app, client, headers, declared):
    existing = [{"openid": f"o_{i}", "tags": ["x"]} for i in range(0, 1000, 2)]
    assert batch(client, headers, existing).status_code == 200
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if (
            statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE"))
            and "wechat_user" in statement
        ):
            statements.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            rows = [{"openid": f"o_{i}", "attributes": {"points": i}, "tags": ["y"]} for i in range(1000)]
            response = batch(client, headers, rows)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200
    statuses = [r["status"] for r in response.get_json()["results"]]
    assert statuses.count("created") == 500 and statuses.count("updated") == 500
    assert len(statements) == 3, statements  # the stored users, one INSERT, one UPDATE
    with app.app_context():
        assert db.session.scalar(select(sa.func.count()).select_from(WechatUser)) == 1000
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == "o_998"))
        assert (user.tags, user.attributes) == (["y"], {"points": 998})


def test_the_users_scope_is_required(client, runner, declared):
    other = key_for(runner, "send", "campaigns")
    for response in (
        put(client, other, "/api/v1/users/o_1", {}),
        batch(client, other, []),
        put(client, other, "/api/v1/attributes/city", {"type": "string"}),
        client.get("/api/v1/attributes", headers=other),
    ):
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
        assert "users" in response.get_json()["error"]["message"]
    assert put(client, {}, "/api/v1/users/o_1", {}).status_code == 401


def test_attributes_are_declared_listed_and_changed(client, headers):
    created = put(client, headers, "/api/v1/attributes/tier", {"type": "string"})
    assert (created.status_code, created.get_json()) == (
        201,
        {"key": "tier", "type": "string", "label": "tier"},
    )
    changed = put(client, headers, "/api/v1/attributes/tier", {"type": "number", "label": "会员等级"})
    assert (changed.status_code, changed.get_json()["type"]) == (200, "number")
    listed = client.get("/api/v1/attributes", headers=headers).get_json()
    assert listed == {"attributes": [{"key": "tier", "type": "number", "label": "会员等级"}]}
    # The document names the declared key with its type.
    document = client.get("/api/v1/openapi.json").get_json()
    properties = document["components"]["schemas"]["UserUpsert"]["properties"]["attributes"]["properties"]
    assert properties["tier"]["anyOf"][0] == {"type": "number"}
    for body, code in [
        ({"type": "money"}, "invalid_type"),
        ({"type": "string", "label": " "}, "invalid_label"),
        ({"type": "string", "extra": 1}, "unknown_field"),
    ]:
        response = put(client, headers, "/api/v1/attributes/tier", body)
        assert (response.status_code, response.get_json()["error"]["code"]) == (422, code)
    bad_key = put(client, headers, "/api/v1/attributes/-bad", {"type": "string"})
    assert (bad_key.status_code, bad_key.get_json()["error"]["code"]) == (422, "invalid_key")


def test_concurrent_batches_naming_the_same_new_users_both_land(app, headers, declared):
    """Two back-end processes send the same new openids at once: no error, no lost merge, one row each."""
    import threading

    openids = [f"o_race_{i}" for i in range(200)]
    answers: list = []

    def send(key: str, value) -> None:
        client = app.test_client()
        for _ in range(3):
            rows = [{"openid": openid, "attributes": {key: value}} for openid in openids]
            response = batch(client, headers, rows)
            answers.append((response.status_code, {r["status"] for r in response.get_json()["results"]}))

    threads = [threading.Thread(target=send, args=args) for args in (("city", "上海"), ("points", 7))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status == 200 and "error" not in statuses for status, statuses in answers), answers
    with app.app_context():
        users = list(db.session.scalars(select(WechatUser).where(WechatUser.openid.in_(openids))))
    assert len(users) == 200
    assert all(user.attributes == {"city": "上海", "points": 7} for user in users)


def test_a_batch_body_over_8_mb_is_413_and_a_bad_path_openid_422(client, headers):
    big = {"users": [{"openid": "o_big", "nickname": "x" * 1000}] * 9000}
    response = client.post(
        "/api/v1/users/batch", data=json.dumps(big), headers=headers, content_type="application/json"
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (413, "body_too_large")
    response = put(client, headers, "/api/v1/users/" + "o" * 65, {})
    assert (response.status_code, response.get_json()["error"]["code"]) == (422, "invalid_openid")
