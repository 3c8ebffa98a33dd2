"""Bad input to both JSON APIs, one class at a time: each is a clear JSON 4xx, never a 500 or a write.

Run with TEST_DATABASE_URL set too: PostgreSQL refuses NUL in text and integers at or above 2^31, so
that is where these used to become 500s.
"""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import func, select

from dashboard.extensions import db
from dashboard.models import Delivery, WechatUser
from dashboard.models.grants import GrantEvent, GrantReport
from tests.api.test_mp_api import OK, T1, bearer, login


@pytest.fixture
def api_key(app, runner):
    result = runner.invoke(args=["create-api-key", "bad-input", "--scope", "send", "--scope", "read"])
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def callers(client, sandbox, api_key):
    """Each JSON operation with credentials that get past authentication, and a valid body to spoil."""
    token, openid = login(client, sandbox)
    return {
        "session": ("/api/mp/session", {}, lambda text: {"code": text}),
        "grants": ("/api/mp/grants", bearer(token), lambda text: {**OK, "page": text, T1: "accept"}),
        "settings": ("/api/mp/settings", bearer(token), lambda text: {"mainSwitch": True, text: "accept"}),
        "messages": (
            "/api/v1/messages",
            {"Authorization": f"Bearer {api_key}"},
            lambda text: {"openid": openid, "template": text},
        ),
    }


def written(app) -> tuple[int, ...]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (GrantEvent, GrantReport, Delivery, WechatUser)
        )


def post_raw(client, url, headers, raw: str):
    return client.post(url, data=raw.encode("utf-8"), headers=headers, content_type="application/json")


def error(response) -> str:
    assert response.is_json, response.get_data(as_text=True)[:200]
    body = response.get_json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    return body["error"]["code"]


OPERATIONS = ["session", "grants", "settings", "messages"]


@pytest.mark.parametrize("text", ["a\x00b", "\x00"], ids=["nul-inside", "nul-alone"])
def test_nul_in_a_string_or_a_key_is_400(app, client, callers, text):
    before = written(app)
    for operation in OPERATIONS:
        url, headers, body = callers[operation]
        response = client.post(url, json=body(text), headers=headers)
        assert (response.status_code, error(response)) == (400, "invalid_json"), operation
        assert "NUL" in response.get_json()["error"]["message"]
    assert written(app) == before


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\ud83d"], ids=["high", "low", "trailing-high"])
def test_a_lone_surrogate_is_400(app, client, callers, escape):
    before = written(app)
    for operation in OPERATIONS:
        url, headers, body = callers[operation]
        # json.dumps would refuse to write one; this is what a client's serializer can send.
        raw = json.dumps(body("PLACEHOLDER")).replace("PLACEHOLDER", escape)
        response = post_raw(client, url, headers, raw)
        assert (response.status_code, error(response)) == (400, "invalid_json"), operation
    assert written(app) == before


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 33 + "]" * 33,
        '{"a":' * 33 + "1" + "}" * 33,
        "[" * 5000 + "]" * 5000,
        '{"a":' * 1000 + "{}" + "}" * 1000,
    ],
    ids=["list-33", "object-33", "list-5000", "object-1000"],
)
def test_deep_nesting_is_400(client, callers, raw):
    for operation in OPERATIONS:
        url, headers, _ = callers[operation]
        response = post_raw(client, url, headers, raw)
        assert (response.status_code, error(response)) == (400, "invalid_json"), operation


def test_deep_nesting_up_to_the_server_api_body_limit_is_400(client, callers):
    url, headers, _ = callers["messages"]
    response = post_raw(client, url, headers, "[" * 30_000 + "]" * 30_000)
    assert (response.status_code, error(response)) == (400, "invalid_json")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000, "-" + "9" * 400])
def test_odd_numbers_are_a_4xx(client, callers, number):
    for operation in OPERATIONS:
        url, headers, body = callers[operation]
        raw = json.dumps(body("PLACEHOLDER")).replace('"PLACEHOLDER"', number)
        response = post_raw(client, url, headers, raw)
        assert 400 <= response.status_code < 500, (operation, response.get_data(as_text=True))
        error(response)
        # Not JSON at all (NaN, Infinity), or more digits than Python reads: the body itself is refused.
        if number in ("NaN", "Infinity", "-Infinity") or len(number) > 4300:
            assert (response.status_code, error(response)) == (400, "invalid_json"), operation


def test_a_huge_scene_number_is_a_field_error(client, callers):
    url, headers, _ = callers["grants"]
    raw = json.dumps({**OK, T1: "accept", "scene": 1}).replace('"scene": 1', '"scene": ' + "9" * 4000)
    response = post_raw(client, url, headers, raw)
    assert (response.status_code, error(response)) == (422, "invalid_field")


@pytest.mark.parametrize(
    "url",
    ["/api/v1/messages/2147483648", "/api/v1/messages/9223372036854775808", "/api/v1/messages/" + "9" * 5000],
)
def test_ids_beyond_the_database_integer_are_a_json_404(client, api_key, url):
    response = client.get(url, headers={"Authorization": f"Bearer {api_key}"})
    assert (response.status_code, error(response)) == (404, "not_found")


@pytest.mark.parametrize("path", ["%00", "a%00b", "%00/more"])
def test_nul_in_a_template_id_path_is_a_json_404(client, callers, path):
    _, headers, _ = callers["grants"]
    response = client.get(f"/api/mp/grants/{path}", headers=headers)
    assert (response.status_code, error(response)) == (404, "not_found")


@pytest.mark.parametrize("key", ["k\x00", "\x00", "ключ", "a b", "k" * 129])
def test_a_malformed_idempotency_key_is_400_in_both_apis(app, client, callers, key):
    before = written(app)
    for name in ("grants", "messages"):
        url, headers, body = callers[name]
        response = client.post(url, json=body("x"), headers={**headers, "Idempotency-Key": key})
        assert (response.status_code, error(response)) == (400, "invalid_idempotency_key"), name
    assert written(app) == before


@pytest.mark.parametrize(
    "method,url",
    [
        ("GET", "/api/v1/nothing"),
        ("GET", "/api/nothing"),
        ("POST", "/api/mp/nothing/here"),
        ("GET", "/api/v1/messages/abc"),
        ("GET", "/api/v1/messages/-1"),
    ],
)
def test_unknown_api_paths_are_a_json_404(client, method, url):
    response = client.open(url, method=method)
    assert (response.status_code, error(response)) == (404, "not_found")


@pytest.mark.parametrize(
    "method,url,allowed",
    [
        ("GET", "/api/v1/messages", {"POST"}),
        ("DELETE", "/api/v1/messages/1", {"GET"}),
        ("PUT", "/api/mp/grants", {"GET", "POST"}),
        ("GET", "/api/mp/session", {"POST"}),
        ("POST", "/api/v1/openapi.json", {"GET"}),
    ],
)
def test_a_wrong_method_is_a_json_405_with_allow(client, method, url, allowed):
    response = client.open(url, method=method)
    assert (response.status_code, error(response)) == (405, "method_not_allowed")
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_a_werkzeug_400_under_api_is_json(client):
    response = client.get("/api/v1/openapi.json", query_string={"q": "\x00"})
    assert (response.status_code, error(response)) == (400, "bad_request")


def chunks(size: int, piece: int = 4096):
    sent = 0
    while sent < size:
        yield b" " * min(piece, size - sent)
        sent += piece


@pytest.mark.parametrize(
    "url,size",
    [
        ("/api/v1/messages", 64 * 1024 + 1),  # the server API's limit
        ("/api/v1/messages", 3 * 1024 * 1024),  # beyond MAX_CONTENT_LENGTH
        ("/api/mp/grants", 16 * 1024 + 1),  # MP_MAX_BODY_BYTES
        ("/api/mp/grants", 3 * 1024 * 1024),
        ("/api/mp/session", 3 * 1024 * 1024),
    ],
)
def test_an_oversized_chunked_body_is_a_json_413(app, live_server, callers, url, size):
    """Over a real socket, Transfer-Encoding: chunked and no Content-Length: the size is only known
    by reading, and reading stops one byte past the limit."""
    headers = {"Content-Type": "application/json"}
    for _, (operation_url, credentials, _) in callers.items():
        if operation_url == url:
            headers.update(credentials)
    before = written(app)
    response = requests.post(f"{live_server}{url}", data=chunks(size), headers=headers, timeout=30)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert response.status_code == 413, response.text[:200]
    assert response.json()["error"]["code"] == "body_too_large"
    assert written(app) == before
