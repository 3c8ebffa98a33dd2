"""CSV downloads of the deliveries list, the users and the audit log: streamed in batches, a BOM, times
in the operator's zone with their offset, the list's filters, and no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
import types

import pytest
import sqlalchemy as sa

from dashboard import csv_export
from dashboard.audit.services import record
from dashboard.deliveries import services
from dashboard.extensions import db
from dashboard.models import DeliveryState, WechatUser
from tests.deliveries.helpers import OPENID, add_delivery, add_template, add_user


def table(response) -> list[dict]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_deliveries_csv_has_the_lists_filters_local_times_and_words(app, client, auth):
    with app.app_context():
        add_template()
        user_id = add_user()
        sent = add_delivery(DeliveryState.sent, user_id=user_id, errcode=0)
        failed = add_delivery(
            DeliveryState.failed, user_id=user_id, reason="content", errcode=47003, errmsg="=HYPERLINK(1)"
        )
        add_delivery(DeliveryState.skipped, reason="budget")
        db.session.commit()
    auth.login("viewer")
    response = client.get("/deliveries/export.csv?state=failed&state=sent")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"] and response.is_streamed
    rows = table(response)
    assert [int(r["delivery_id"]) for r in rows] == [failed, sent]  # newest first, as on the list
    assert rows[0]["error_class"] == "content" and rows[0]["errcode"] == "47003"
    assert rows[0]["outcome"] == "内容不合规 (47003)" and rows[0]["template_title"] == "订单发货提醒"
    assert rows[0]["errmsg"] == "'=HYPERLINK(1)"  # formula injection defused
    assert rows[0]["openid"] == OPENID and rows[0]["user_id"] == str(user_id)
    assert all(r["created_at"].endswith("+08:00") for r in rows)
    assert rows[1]["sent_at"].endswith("+08:00") and rows[1]["state"] == "sent"
    everything = table(client.get("/deliveries/export.csv"))
    assert len(everything) == 3 and everything[0]["outcome"] == "次数保留给单条发送"
    assert client.get("/deliveries/export.csv?day=nope&errcode=x").status_code == 200


def test_the_deliveries_csv_streams_one_batch_at_a_time(app, client, auth, monkeypatch):
    with app.app_context():
        for _ in range(11):
            add_delivery(DeliveryState.sent)
        db.session.commit()
    original = services.csv_rows
    monkeypatch.setattr(services, "csv_rows", lambda criteria: original(criteria, batch=4))
    queries = []

    def count(conn, cursor, statement, *args):
        if "FROM delivery" in statement and "LIMIT" in statement:
            queries.append(statement)

    auth.login("viewer")
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get("/deliveries/export.csv")
        assert response.is_streamed and not isinstance(response.response, list)
        chunks = iter(response.response)
        next(chunks)  # the BOM and the header
        first = next(chunks)
        assert len(queries) == 1 and (first if isinstance(first, str) else first.decode()).count("\n") == 4
        rest = list(chunks)
        assert len(queries) == 11 // 4 + 2  # three batches, then the empty one that ends it
        assert sum((c if isinstance(c, str) else c.decode()).count("\n") for c in rest) == 7
    finally:
        with app.app_context():
            sa.event.remove(db.engine, "before_cursor_execute", count)


def test_the_users_csv_follows_the_search(app, client, auth):
    with app.app_context():
        db.session.add_all(
            [
                WechatUser(
                    openid="oCsv00000000000000000000001",
                    nickname="小明",
                    tags=["会员"],
                    attributes={"city": "上海"},
                ),
                WechatUser(openid="oCsv00000000000000000000002", nickname="+SUM(A1)", tags=[], attributes={}),
                WechatUser(openid="oOther000000000000000000003", nickname="Hong"),
            ]
        )
        db.session.commit()
    auth.login("viewer")
    response = client.get("/users/export.csv?q=oCsv")
    assert response.status_code == 200 and response.is_streamed
    rows = table(response)
    assert [r["openid"] for r in rows] == ["oCsv00000000000000000000002", "oCsv00000000000000000000001"]
    assert rows[0]["nickname"] == "'+SUM(A1)" and rows[1]["tags"] == "会员"
    assert rows[1]["attributes"] == '{"city": "上海"}' and rows[1]["created_at"].endswith("+08:00")
    assert len(table(client.get("/users/export.csv"))) == 3
    page = client.get("/users?q=oCsv").get_data(as_text=True)
    assert "/users/export.csv?q=oCsv" in page


def test_the_audit_csv_is_for_admins_and_follows_the_filters(app, client, auth):
    with app.app_context():
        record("catalog.synced", target_type="catalog", actor_email="alice@example.com", added=2)
        record("api_key.revoked", target_type="api_key", target_id="7", actor_email="@evil.example")
        db.session.commit()
    auth.login("viewer")
    assert client.get("/settings/audit/export.csv").status_code == 403
    auth.login("admin")
    rows = table(client.get("/settings/audit/export.csv?action=api_key"))
    assert [r["action"] for r in rows] == ["api_key.revoked"]
    assert rows[0]["actor_email"] == "'@evil.example" and rows[0]["target_id"] == "7"
    assert rows[0]["action_label"] and rows[0]["at"].endswith("+08:00")
    assert len(table(client.get("/settings/audit/export.csv"))) == 2
    page = client.get("/settings/audit/?action=api_key").get_data(as_text=True)
    assert "/settings/audit/export.csv?action=api_key" in page


@pytest.mark.parametrize(
    "value,cell",
    [
        ("=1+1", "'=1+1"),
        ("+86 138", "'+86 138"),
        ("-x", "'-x"),
        ("@a", "'@a"),
        ("ok", "ok"),
        (-1, -1),
        (None, ""),
    ],
)
def test_cells_that_start_like_a_formula_get_a_quote(value, cell):
    assert csv_export.safe_cell(value) == cell


def test_the_stream_is_a_generator(app):
    with app.test_request_context():
        chunks = services.csv_rows(services.DeliveryFilter())
        assert isinstance(chunks, types.GeneratorType)
