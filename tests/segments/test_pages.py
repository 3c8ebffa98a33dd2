"""Segment pages: list, editor with a live count (htmx fragment), reach per template, CSV of openids."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import AuditEvent, Segment
from dashboard.models.catalog import MessageTemplate, TemplateKind
from tests.segments.conftest import T_ONE


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def fragment_count(body: str) -> int:
    start = body.index('id="segment-count">') + len('id="segment-count">')
    return int(body[start : body.index("<", start)])


def segments_in_db(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Segment))


def test_the_live_count_follows_the_filter(client, auth, people):
    auth.login("marketer")
    vip = sum("vip" in p.tags for p in people)
    body = text(
        client.post("/segments/preview", data={"filter": '{"tag": "vip"}'}, headers={"HX-Request": "true"})
    )
    assert "<html" not in body and fragment_count(body) == vip
    assert people[1].openid in body or any(p.openid in body for p in people if "vip" in p.tags)
    body = text(client.post("/segments/preview", data={"filter": '{"all": []}'}))
    assert fragment_count(body) == len(people)
    body = text(client.post("/segments/preview", data={"filter": '{"sparkle": 1}'}))
    assert 'id="filter-problem"' in body and "sparkle" in body


def test_the_editor_page_and_the_fragment_share_markup(client, auth, people):
    auth.login("marketer")
    page = text(client.get("/segments/new"))
    assert 'id="segment-preview"' in page and 'hx-post="/segments/preview"' in page
    assert f'id="segment-count">{len(people)}<' in page  # the starting filter is everyone


def test_a_marketer_saves_a_segment_and_a_viewer_reads_its_reach(app, client, auth, people):
    with app.app_context():
        db.session.add(
            MessageTemplate(
                template_id=T_ONE,
                title="Order",
                kind=TemplateKind.one_time,
                content="{{thing1.DATA}}",
                source="sync",
            )
        )
        db.session.commit()
    auth.login("marketer")
    doc = {"grant": {"template_id": T_ONE}}
    response = client.post(
        "/segments/new", data={"name": "Granted", "filter": json.dumps(doc), "action": "save"}
    )
    assert response.status_code == 302
    with app.app_context():
        segment = db.session.scalars(select(Segment)).one()
        assert segment.filter == {"grant": {"template_id": T_ONE, "min_credits": 1}}
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "segment.created"))
    auth.login("viewer")
    assert "Granted" in text(client.get("/segments"))
    body = text(client.get(f"/segments/{segment.id}", query_string={"template_id": T_ONE}))
    assert 'id="segment-reach"' in body
    fragment = text(
        client.get(
            f"/segments/{segment.id}", query_string={"template_id": T_ONE}, headers={"HX-Request": "true"}
        )
    )
    assert "<html" not in fragment and 'id="segment-reach"' in fragment
    # viewers read, never edit
    assert client.get(f"/segments/{segment.id}/edit").status_code == 403
    assert client.post("/segments/preview", data={"filter": "{}"}).status_code == 403


def test_add_a_condition_builds_the_json(client, auth, people):
    auth.login("marketer")
    body = text(
        client.post(
            "/segments/new",
            data={
                "name": "x",
                "filter": '{"all": [{"tag": "vip"}]}',
                "action": "add",
                "leaf": "attribute",
                "leaf_key": "city",
                "leaf_op": "eq",
                "leaf_value": "上海",
            },
        )
    )
    assert "&#34;attribute&#34;" in body or "&quot;attribute&quot;" in body or '"attribute"' in body
    assert "上海" in body


def test_a_bad_filter_or_name_saves_nothing(app, client, auth, people):
    auth.login("marketer")
    body = text(client.post("/segments/new", data={"name": "x", "filter": '{"tag": ""}', "action": "save"}))
    assert "tag" in body and segments_in_db(app) == 0
    body = text(client.post("/segments/new", data={"name": "  ", "filter": '{"tag": "a"}', "action": "save"}))
    assert segments_in_db(app) == 0


def test_an_uploaded_csv_of_openids_becomes_a_leaf(app, client, auth, people):
    auth.login("marketer")
    csv = f"openid\n{people[0].openid}\n{people[3].openid}\n{people[0].openid}\n".encode()
    response = client.post(
        "/segments/new",
        data={
            "name": "Listed",
            "filter": '{"all": []}',
            "action": "save",
            "openids_csv": (io.BytesIO(csv), "list.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    with app.app_context():
        segment = db.session.scalars(select(Segment)).one()
        assert segment.filter == {"all": [{"openids": [people[0].openid, people[3].openid]}]}


@pytest.mark.parametrize(
    "raw,lines",
    [
        (b"openid\nok_openid_1\nnot an openid\nok_openid_2\nbad!\n", [3, 5]),
        (b"\xff\xfe\x00bad", [0]),
        (b"openid\n\n", [0]),
    ],
)
def test_csv_errors_are_listed_per_row_and_nothing_is_saved(app, client, auth, people, raw, lines):
    auth.login("marketer")
    body = text(
        client.post(
            "/segments/new",
            data={
                "name": "Listed",
                "filter": '{"all": []}',
                "action": "save",
                "openids_csv": (io.BytesIO(raw), "l.csv"),
            },
            content_type="multipart/form-data",
        )
    )
    assert 'id="csv-errors"' in body
    table = body[body.index('id="csv-errors"') :]
    for line in lines:
        assert f"<td>{line or '—'}</td>" in table
    assert segments_in_db(app) == 0


def test_the_pages_speak_both_languages(client, auth, people):
    auth.login("marketer")
    for lang, words in (("en", "New segment"), ("zh", "新建分群")):
        with client.session_transaction() as session:
            session["locale"] = lang
        assert words in text(client.get("/segments/new"))


def test_a_bad_condition_is_explained_and_the_filter_kept(client, auth, people):
    auth.login("marketer")
    body = text(
        client.post(
            "/segments/new",
            data={
                "name": "x",
                "filter": '{"all": [{"tag": "vip"}]}',
                "action": "add",
                "leaf": "seen_within_days",
            },
        )
    )
    assert 'id="editor-problem"' in body and "seen_within_days" in body
    assert "vip" in body


def test_editing_keeps_names_unique_and_a_bad_csv_changes_nothing(app, client, auth, people):
    auth.login("marketer")
    for name in ("One", "Two"):
        assert (
            client.post("/segments/new", data={"name": name, "filter": '{"tag": "vip"}'}).status_code == 302
        )
    with app.app_context():
        two = db.session.scalars(select(Segment).where(Segment.name == "Two")).one()
    body = text(client.post(f"/segments/{two.id}/edit", data={"name": "one", "filter": '{"tag": "new"}'}))
    assert "已有名为 one 的分群" in body  # the console speaks Chinese by default
    body = text(
        client.post(
            f"/segments/{two.id}/edit",
            data={
                "name": "Two",
                "filter": '{"tag": "new"}',
                "openids_csv": (io.BytesIO(b"ok_1\nbad id\n"), "x.csv"),
            },
            content_type="multipart/form-data",
        )
    )
    assert 'id="csv-errors"' in body
    with app.app_context():
        assert db.session.get(Segment, two.id).filter == {"tag": "vip"}
    assert (
        client.post(f"/segments/{two.id}/edit", data={"name": "Two", "filter": '{"tag": "new"}'}).status_code
        == 302
    )
    with app.app_context():
        assert db.session.get(Segment, two.id).filter == {"tag": "new"}
