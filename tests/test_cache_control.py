"""Pages for a logged-in operator, and the answer to a login, are never stored by a browser or proxy.

A shared computer's back button or disk cache must not show a page an operator saw, least of all the
one that shows a new API key once.
"""

from __future__ import annotations

import re

from tests.test_access import sample_url

SKIPPED_PREFIXES = ("/api/", "/wechat/", "/static/")


def html_pages(app):
    for rule in app.url_map.iter_rules():
        if "GET" in (rule.methods or set()) and not rule.rule.startswith(SKIPPED_PREFIXES):
            yield rule.endpoint, sample_url(rule)


def test_every_page_for_a_logged_in_operator_is_no_store(app, client, auth):
    auth.login("admin")
    checked = 0
    for endpoint, url in html_pages(app):
        response = client.get(url)
        if not response.content_type.startswith("text/html"):
            continue
        assert response.headers.get("Cache-Control") == "no-store", f"{endpoint} {url}"
        checked += 1
    assert checked >= 10


def test_the_page_that_shows_a_new_api_key_is_no_store(client, auth):
    auth.login("admin")
    response = client.post("/settings/api-keys/", data={"name": "orders", "scopes": ["send"]})
    assert re.search(r'<code class="secret-once">tz_', response.get_data(as_text=True))
    assert response.headers["Cache-Control"] == "no-store"


def test_the_answer_to_a_login_is_no_store(client, personas):
    wrong = client.post("/login", data={"email": "alice@example.com", "password": "a guess"})
    assert wrong.status_code == 200 and wrong.headers["Cache-Control"] == "no-store"
    right = client.post("/login", data={"email": "alice@example.com", "password": personas["admin"].password})
    assert right.status_code == 302 and right.headers["Cache-Control"] == "no-store"


def test_static_files_stay_cacheable_and_anonymous_pages_are_unchanged(client, auth):
    assert "no-store" not in (client.get("/login").headers.get("Cache-Control") or "")
    auth.login("admin")
    assert "no-store" not in (client.get("/static/js/app.js").headers.get("Cache-Control") or "")
