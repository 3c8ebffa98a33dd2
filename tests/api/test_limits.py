"""Body size limits and rate limits (per IP and per token), in process and through Redis."""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from tests.api.test_mp_api import OK, T1, bearer, error_of, login


def test_a_body_over_the_limit_is_413_before_it_is_read(client, sandbox):
    token, _ = login(client, sandbox)
    huge = b'{"errMsg": "requestSubscribeMessage:ok", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    for path, headers in (("/api/mp/grants", bearer(token)), ("/api/mp/session", {})):
        response = client.post(path, data=huge, content_type="application/json", headers=headers)
        assert response.status_code == 413 and error_of(response) == "body_too_large"


def test_a_chunked_body_without_length_is_cut_at_the_limit_too(app, live_server, sandbox):
    app.config["MP_MAX_BODY_BYTES"] = 4096

    def chunks():
        yield b'{"code": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    response = requests.post(f"{live_server}/api/mp/session", data=chunks(), timeout=10)
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


def test_too_many_requests_from_one_address_get_429_with_retry_after(app, client):
    app.config["MP_RATE_LIMIT_PER_IP"] = 5
    statuses = [client.get("/api/mp/ping").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    limited = client.get("/api/mp/ping")
    assert error_of(limited) == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 61
    other = client.get("/api/mp/ping", environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other.status_code == 200


def test_too_many_requests_for_one_token_get_429(app, client, sandbox):
    token, _ = login(client, sandbox)
    other, _ = login(client, sandbox, sandbox.openids()[1])
    app.config["MP_RATE_LIMIT_PER_TOKEN"] = 3
    statuses = [client.get("/api/mp/grants", headers=bearer(token)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert client.post("/api/mp/grants", json={**OK, T1: "accept"}, headers=bearer(token)).status_code == 429
    assert client.get("/api/mp/grants", headers=bearer(other)).status_code == 200


def test_the_redis_limiter_is_shared_by_every_process(app):
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set: the shared limiter is not tested")
    from dashboard.api.ratelimit import RateLimiter, RedisCounter

    prefix = f"tongzhi:test:{uuid.uuid4().hex}:"
    one, two = RateLimiter(RedisCounter(url, prefix)), RateLimiter(RedisCounter(url, prefix))
    verdicts = [limiter.check("ip:1.2.3.4", 3).allowed for limiter in (one, two, one, two)]
    assert verdicts == [True, True, True, False]


def test_a_broken_redis_lets_requests_through(app):
    from dashboard.api.ratelimit import RateLimiter, RedisCounter

    limiter = RateLimiter(RedisCounter("redis://127.0.0.1:9/0", "x:"))
    assert limiter.check("ip:1.2.3.4", 1).allowed


@pytest.fixture
def behind_one_proxy(database_url, tmp_path, config_overrides):
    """The app as `create_app` builds it with TRUSTED_PROXY_HOPS=1 (gunicorn behind nginx)."""
    from dashboard import create_app
    from dashboard.extensions import db
    from tests.conftest import base_config

    app = create_app({**base_config(database_url, tmp_path), **config_overrides, "TRUSTED_PROXY_HOPS": 1})
    yield app
    with app.app_context():
        db.engine.dispose()


def test_behind_one_trusted_proxy_each_client_address_has_its_own_bucket(behind_one_proxy):
    behind_one_proxy.config["MP_RATE_LIMIT_PER_IP"] = 3
    client = behind_one_proxy.test_client()

    def ping(forwarded_for: str) -> int:
        return client.get("/api/mp/ping", headers={"X-Forwarded-For": forwarded_for}).status_code

    assert [ping("203.0.113.7") for _ in range(4)] == [200, 200, 200, 429]
    assert ping("198.51.100.9") == 200
    # The proxy appends the address it saw: what a client wrote before it is not believed.
    assert ping("198.51.100.9, 203.0.113.7") == 429


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(app, client):
    assert app.config["TRUSTED_PROXY_HOPS"] == 0
    app.config["MP_RATE_LIMIT_PER_IP"] = 3
    statuses = [
        client.get("/api/mp/ping", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
