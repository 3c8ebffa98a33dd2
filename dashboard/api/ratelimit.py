"""A small fixed-window rate limiter for the mini-program API.

Counts requests per key (``ip:<address>``, ``user:<id>``) in one-minute windows. With ``REDIS_URL`` set
the counts live in Redis (``INCR`` + ``EXPIRE``), shared by every worker and machine. Without it they live
in this process, so each gunicorn worker counts on its own and N workers let through up to N times the
limit: a deliberate trade for the embedded default (no extra service), stated in the README. A Redis
failure lets requests through (logged): an outage of the limiter must not become an outage of logins.

Behind a reverse proxy ``request.remote_addr`` would be the proxy's, and every mini-program user would
share one bucket: ``TRUSTED_PROXY_HOPS`` (see ``create_app``) makes it the client's, read from the
X-Forwarded-For entries the trusted proxies appended. Without it that header is ignored, so a client
cannot pick its own bucket by writing one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from flask import Flask

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


class MemoryCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, window: int) -> int:
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[key] = (window, count)
            if len(self._counts) > 100_000:  # forget finished windows rather than grow without bound
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            return count


class RedisCounter:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix

    def hit(self, key: str, window: int) -> int:
        name = f"{self._prefix}{window}:{key}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, WINDOW_SECONDS * 2)
        count, _ = pipe.execute()
        return int(count)


class RateLimiter:
    def __init__(self, counter: MemoryCounter | RedisCounter) -> None:
        self.counter = counter

    def check(self, key: str, limit: int) -> Verdict:
        """Count one request for ``key``; refuse it when the window already holds ``limit`` (0 = no limit)."""
        if limit <= 0:
            return Verdict(True)
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        try:
            count = self.counter.hit(key, window)
        except Exception as exc:  # noqa: BLE001 - fail open, see the module docstring
            log.warning("rate limiter unavailable (%s): letting the request through", type(exc).__name__)
            return Verdict(True)
        if count <= limit:
            return Verdict(True)
        return Verdict(False, retry_after=max(1, int((window + 1) * WINDOW_SECONDS - now) + 1))


def limiter_for(app: Flask) -> RateLimiter:
    limiter = app.extensions.get("mp_rate_limiter")
    if limiter is None:
        url = app.config.get("REDIS_URL")
        counter = (
            RedisCounter(url, app.config.get("MP_RATE_LIMIT_REDIS_PREFIX", "tongzhi:ratelimit:"))
            if url
            else MemoryCounter()
        )
        limiter = app.extensions["mp_rate_limiter"] = RateLimiter(counter)
    return limiter
