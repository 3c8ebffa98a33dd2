"""Junk in, a page out: no 500 and no partial write, whatever the query string or form says."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import AuditEvent
from dashboard.models.catalog import MessageTemplate

HTMX = {"HX-Request": "true"}


@pytest.fixture
def template_pk(app, client, auth, sandbox, catalog):
    auth.login("marketer")
    catalog.sync()
    return catalog.all()[0].id


@pytest.mark.parametrize(
    "query",
    [
        {"fix": "no_such_key"},
        {"fix": ""},
        {"lang": "fr_FR", "miniprogram_state": "production"},
        {"kw_thing1": "\u2028🙂" * 50},  # a NUL in any query is a 400 (tests/test_bad_input_urls.py)
        {"page": "has spaces", "openid": "!!"},
    ],
)
def test_the_preview_takes_any_query(client, template_pk, query):
    for headers in (HTMX, {}):
        response = client.get(f"/templates/{template_pk}/preview", query_string=query, headers=headers)
        assert response.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/templates?kind=x&enabled=maybe&drift=%25&scene=%25_&q=%25",
        "/templates/library?category=abc&start=-5&q=" + "长" * 100,
        "/templates/library?category=999999",
        "/templates/library/0",
    ],
)
def test_reads_take_any_query(client, template_pk, url):
    assert client.get(url).status_code == 200


def test_writes_with_junk_forms_change_nothing(app, client, template_pk):
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    posts = [
        (f"/templates/{template_pk}/edit", {"keywords-0-label": "x"}),  # entries missing
        (f"/templates/{template_pk}/edit", {"lang": "xx", "miniprogram_state": "yy", "credit_budget": "0"}),
        (f"/templates/{template_pk}/test-send", {"openid": "o" * 65, "lang": "zz"}),
        (f"/templates/{template_pk}/review", {}),  # nothing to review
        ("/templates/sync", {"fingerprint": "forged"}),
        ("/templates/library/1001", {"kid1": "x", "kid2": "y"}),
        ("/templates/new", {"template_id": "a" * 65, "content": "{{thing1.DATA}}"}),
    ]
    for url, form in posts:
        response = client.post(url, data=form)
        assert response.status_code in (200, 302), (url, response.status_code)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == before
        assert db.session.scalar(select(func.count()).select_from(MessageTemplate)) == 6
