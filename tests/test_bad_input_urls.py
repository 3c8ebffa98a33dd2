"""Walk the URL map with input no database can store: every route, every method, never a 5xx.

PostgreSQL is where this bites (``integer out of range`` for ids at or above 2^31, ``A string literal cannot
contain NUL``), so run it with TEST_DATABASE_URL set too. New routes are covered automatically.
"""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import IntegerConverter, PathConverter, UnicodeConverter
from werkzeug.routing.converters import NumberConverter

IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Ids at the edge of PostgreSQL's integer, of bigint, and far beyond both.
HUGE_IDS = ["2147483648", "9223372036854775808", "1" + "0" * 40]
BAD_TEXT = ["a%00b", "%00"]
# Every query parameter a console page or API reads, with values no column can hold: the NULs in one
# request (the first one found answers), the numbers in another (each must get past the others).
NUL_QUERY = {
    name: "a\x00b"
    for name in (
        "q",
        "openid",
        "template_id",
        "state",
        "source",
        "scene",
        "kind",
        "action",
        "actor",
        "target",
        "since",
        "title",
        "fix",
        "next",
        "enabled",
        "drift",
        "echostr",
    )
}
HUGE_QUERY = {
    "errcode": "2147483648",
    "campaign_id": "99999999999999999999",
    "before": "2147483648",
    "category": "2147483648",
    "start": "9223372036854775808",
    "wait": "1e400",
}
BAD_FORM = {
    "name": "n\x00",
    "email": "a\x00@example.com",
    "password": "p\x00",
    "title": "t\x00",
    "template_id": "T\x00",
    "scene": "s\x00",
    "content": "c\x00",
    "openid": "o\x00",
    "file": "x\x00",
    "kid_list": "1\x00",
    "per_minute": "2147483648",
    "daily_limit": "99999999999999999999",
    "scopes": "send\x00",
}


def urls(rule, values: list[str], converters: tuple[type, ...]) -> list[str]:
    """The rule's URL with each argument of the given converter kinds set to each of ``values``."""
    found = []
    for value in values:
        url, replaced = rule.rule, False
        for argument in rule.arguments:
            converter = rule._converters.get(argument)
            if converter is None:  # an argument the rule only takes from its defaults
                continue
            if isinstance(converter, converters):
                url, replaced = re.sub(rf"<(?:[^:>]+:)?{argument}>", value, url), True
            else:
                number = isinstance(converter, NumberConverter)
                url = re.sub(rf"<(?:[^:>]+:)?{argument}>", "1" if number else "zh", url)
        if replaced:
            found.append(url)
    return found


def hit_every_route(client, auth, url_for_rule) -> int:
    answered, wrong = 0, []
    for rule in client.application.url_map.iter_rules():
        for url in url_for_rule(rule):
            for method in sorted((rule.methods or set()) - IGNORED_METHODS):
                auth.login("admin")  # again: the walk goes through POST /logout too
                response = client.open(url, method=method, data=BAD_FORM if method != "GET" else None)
                if response.status_code >= 500 or (url.startswith("/api/") and not response.is_json):
                    wrong.append(f"{method} {url}: {response.status_code} {response.mimetype}")
                answered += 1
    assert not wrong, "\n".join(wrong)
    return answered


def test_ids_beyond_the_database_integer_are_404_on_every_route(app, client, auth, sandbox):
    app.config.update(WECHAT_API_BASE=sandbox.url, WECHAT_APPID=sandbox.appid, WECHAT_SECRET=sandbox.secret)
    auth.login("admin")
    answered = hit_every_route(client, auth, lambda rule: urls(rule, HUGE_IDS, (IntegerConverter,)))
    assert answered >= 20
    # Not just "no 5xx": nothing can be at such an address.
    for url in ("/templates/2147483648", "/users/9223372036854775808", "/api/v1/messages/2147483648"):
        assert client.get(url).status_code == 404, url


def test_nul_in_the_text_parts_of_every_route_is_never_a_5xx(app, client, auth, sandbox):
    app.config.update(WECHAT_API_BASE=sandbox.url, WECHAT_APPID=sandbox.appid, WECHAT_SECRET=sandbox.secret)
    auth.login("admin")
    text = (UnicodeConverter, PathConverter)
    answered = hit_every_route(client, auth, lambda rule: urls(rule, BAD_TEXT, text))
    assert answered >= 4
    response = client.get("/api/mp/grants/%00")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("role", ["admin", None])
def test_nul_and_huge_numbers_in_queries_and_forms_are_a_4xx_on_every_route(app, client, auth, sandbox, role):
    app.config.update(WECHAT_API_BASE=sandbox.url, WECHAT_APPID=sandbox.appid, WECHAT_SECRET=sandbox.secret)
    answered, wrong = 0, []
    for rule in app.url_map.iter_rules():
        url = urls(rule, ["1"], (IntegerConverter,))
        url = url[0] if url else re.sub(r"<(?:[^:>]+:)?[^>]+>", "zh", rule.rule)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            attempts = [{"query_string": NUL_QUERY}, {"query_string": HUGE_QUERY}]
            attempts += [{"query_string": {"page": "2147483648"}}, {"query_string": {"per_page": "1" * 30}}]
            if method != "GET":
                attempts.append({"data": BAD_FORM})
            for attempt in attempts:
                if role:
                    auth.login(role)  # again: the walk goes through POST /logout too
                response = client.open(url, method=method, **attempt)
                if response.status_code >= 500:
                    wrong.append(f"{method} {url} {attempt}: {response.status_code}")
                answered += 1
    assert not wrong, "\n".join(wrong)
    assert answered >= 150
    if role:
        # A NUL in a search or a form is refused with a clear 400, not searched for or stored.
        refused = client.get("/users", query_string={"q": "a\x00"})
        assert refused.status_code == 400 and "无法保存的字符" in refused.get_data(as_text=True)
        assert client.get("/deliveries/", query_string={"page": "2147483648"}).status_code == 400
    response = client.post("/login", data={"email": "a\x00@example.com", "password": "x"})
    assert response.status_code == 400
    api = client.get("/api/mp/ping", query_string={"x": "\x00"})
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "bad_request"


def test_a_wrong_method_on_a_console_page_is_405_with_allow(client, auth):
    auth.login("admin")
    response = client.delete("/templates")
    assert response.status_code == 405 and response.headers["Allow"]
    assert "GET" in response.headers["Allow"] and "DELETE" not in response.headers["Allow"]


def test_an_oversized_chunked_form_is_413(app, live_server):
    """Transfer-Encoding: chunked, no Content-Length, beyond MAX_CONTENT_LENGTH: refused while reading."""
    import requests

    def chunks():
        yield b"email=a%40example.com&password="
        for _ in range(app.config["MAX_CONTENT_LENGTH"] // 65536 + 2):
            yield b"x" * 65536

    response = requests.post(
        f"{live_server}/login",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413
    # Within the limit, the same chunked form reaches the view whole (the login page shows the email back).
    small = requests.post(
        f"{live_server}/login",
        data=iter([b"email=chunked%40example.com", b"&password=wrong"]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert small.status_code == 200 and "chunked@example.com" in small.text


@pytest.mark.parametrize("path", ["/segments", "/templates", "/users", "/campaigns", "/settings/audit"])
def test_a_list_page_is_found_with_or_without_its_trailing_slash(client, auth, path):
    auth.login()
    for typed in (path, path + "/"):
        response = client.get(typed + "?q=1", follow_redirects=True)
        assert response.status_code == 200, typed
        assert response.request.args["q"] == "1"
    # Only pages: a wrong path stays 404, an API path keeps its JSON 404.
    assert client.get("/segments/no-such-page/").status_code == 404
    assert client.get("/api/v1/segments/").is_json
