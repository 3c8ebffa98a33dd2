"""The access-token service: one stable token per AppID, shared by every process and machine.

WeChat's stable-token API (``/cgi-bin/stable_token``) returns the same token in normal mode while it
is valid, so many callers do no harm in principle; but each call costs a round trip and counts against
a quota, and a *force* refresh (20 a day) invalidates the token every other process holds. So:

* The token and its expiry are cached in a shared store: the database (``wechat_access_token``) or,
  when ``REDIS_URL`` is set, Redis. Each process also memoises the last value it saw.
* A token is refreshed ahead of expiry (``WECHAT_TOKEN_REFRESH_MARGIN`` seconds, default 300) by one
  process at a time: it takes the store's lock (PostgreSQL ``pg_advisory_xact_lock``, SQLite
  ``BEGIN IMMEDIATE``, Redis ``SET NX PX``), reads the store again, and only calls WeChat if no other
  process refreshed meanwhile. The others wait on the lock, then reuse what the winner stored.
* When WeChat rejects a token (40001/40014/42001), :meth:`TokenService.invalidate` replaces it only if
  the failed token is still the cached one. It asks in normal mode first and force-refreshes only when
  WeChat keeps handing out the failed token, at most once per ``WECHAT_TOKEN_FORCE_REFRESH_MINUTES``
  (default 75, so at most 20 a day) across all processes.

Token values are secrets: they are registered with the log redactor and kept out of every ``repr``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from flask import Flask

from ..extensions import db
from ..models.types import utcnow
from ..models.wechat import AccessTokenCache
from .client import StableToken
from .errors import ErrorCategory, WeChatError

log = logging.getLogger(__name__)

DEFAULT_REFRESH_MARGIN_SECONDS = 300.0
# 1440 / 75 = 19.2: even a token that fails all day cannot spend WeChat's 20 force refreshes.
DEFAULT_FORCE_REFRESH_MINUTES = 75.0
DEFAULT_REDIS_PREFIX = "tongzhi:wechat:"
# After WeChat handed back a token that is already inside the margin, wait this long before asking again
# (normal mode renews only in the last minutes), so the margin does not turn into a call per request.
MAX_REFETCH_PAUSE = timedelta(seconds=30)


@dataclass(frozen=True)
class CachedToken:
    """What the store holds for one AppID."""

    token: str = field(repr=False)
    expires_at: datetime
    fetched_at: datetime
    force_refreshed_at: datetime | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A token handed to a caller; ``source`` is memory, database, redis or wechat (fetched just now)."""

    token: str = field(repr=False)
    expires_at: datetime
    source: str


class TokenSlot(Protocol):
    """The store's row for one AppID, read and written while its lock is held."""

    def read(self) -> CachedToken | None: ...

    def write(self, cached: CachedToken) -> None: ...


class TokenStore(Protocol):
    kind: str

    def read(self) -> CachedToken | None:
        """The cached token without taking the lock (may be stale by the time it is used)."""
        ...

    def exclusive(self) -> contextlib.AbstractContextManager[TokenSlot]:
        """Hold the cross-process lock for this AppID while the block runs; writes count on success."""
        ...

    def close(self) -> None: ...


class TokenService:
    """Hands out the account's access token; implements ``dashboard.wechat.client.TokenSource``.

    :param fetch: ``fetch(force_refresh) -> StableToken``, normally ``WeChatClient.stable_token``.
    :param on_token: called once per distinct token value seen (registers it with the log redactor).
    """

    def __init__(
        self,
        fetch: Callable[[bool], StableToken],
        store: TokenStore,
        *,
        refresh_margin: timedelta = timedelta(seconds=DEFAULT_REFRESH_MARGIN_SECONDS),
        force_interval: timedelta = timedelta(minutes=DEFAULT_FORCE_REFRESH_MINUTES),
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.fetch = fetch
        self.store = store
        self.refresh_margin = refresh_margin
        self.force_interval = force_interval
        self.refetch_pause = min(MAX_REFETCH_PAUSE, refresh_margin / 10)
        self.on_token = on_token
        self.clock = clock
        self._memo: CachedToken | None = None
        self._seen: set[str] = set()
        self._seen_lock = threading.Lock()

    def get_token(self) -> str:
        return self.get().token

    def get(self) -> IssuedToken:
        """A token that is valid and not due for refresh, from memory, the store, or WeChat (in that order).

        :raise WeChatError: when WeChat refuses to issue one (e.g. 40125 wrong AppSecret: config).
        """
        memo = self._memo
        if memo is not None and not self._needs_refresh(memo, self.clock()):
            return self._issue(memo, "memory")
        cached = self.store.read()
        if cached is not None and not self._needs_refresh(cached, self.clock()):
            return self._issue(cached, self.store.kind)
        with self.store.exclusive() as slot:
            cached = slot.read()
            if cached is not None and not self._needs_refresh(cached, self.clock()):
                return self._issue(cached, self.store.kind)  # another process refreshed while we waited
            fresh = self._fetch(force=False, previous=cached)
            slot.write(fresh)
        return self._issue(fresh, "wechat")

    def invalidate(self, failed_token: str) -> None:
        """WeChat rejected ``failed_token``: replace it in the store if it is still the cached one.

        Normal mode first; a force refresh only when WeChat still returns the failed token and none was
        made within ``force_interval`` (by any process). Otherwise the failed token stays, and the caller
        gets the same token back from :meth:`get_token` and gives up.

        :raise WeChatError: when the refresh itself fails (e.g. 45009/45011 on force refresh).
        """
        memo = self._memo
        if memo is not None and memo.token == failed_token:
            self._memo = None
        error: WeChatError | None = None
        with self.store.exclusive() as slot:
            cached = slot.read()
            if cached is None or cached.token != failed_token:
                return  # already replaced by another caller (or never cached): get() reads the new one
            fresh = self._fetch(force=False, previous=cached)
            if fresh.token == failed_token:
                now = self.clock()
                last = cached.force_refreshed_at
                if last is not None and now - last < self.force_interval:
                    log.warning(
                        "WeChat keeps returning a rejected access token; last force refresh %s ago, not again yet",
                        now - last,
                    )
                    slot.write(fresh)
                    return
                log.warning("WeChat keeps returning a rejected access token: force-refreshing it")
                try:
                    fresh = self._fetch(force=True, previous=cached)
                except WeChatError as exc:
                    # The attempt counts against the daily limit all the same: remember it.
                    error = exc
                    fresh = replace(fresh, force_refreshed_at=now)
            slot.write(fresh)
        self._memo = None if fresh.token == failed_token else fresh
        if error is not None:
            raise error

    def current(self) -> CachedToken | None:
        """The stored token (for display of expiry only: never show ``token``)."""
        return self.store.read()

    def close(self) -> None:
        self.store.close()

    # -- internals -----------------------------------------------------------------------------------

    def _needs_refresh(self, cached: CachedToken, now: datetime) -> bool:
        if cached.expires_at <= now:
            return True
        due = cached.expires_at - now < self.refresh_margin
        return due and now - cached.fetched_at >= self.refetch_pause

    def _fetch(self, *, force: bool, previous: CachedToken | None) -> CachedToken:
        # Expiry counts from before the request, so the stored expiry is never later than WeChat's.
        started = self.clock()
        reply = self.fetch(force)
        self._register(reply.access_token)
        log.info(
            "Fetched a WeChat access token (%s mode), valid %s s",
            "force" if force else "normal",
            reply.expires_in,
        )
        return CachedToken(
            token=reply.access_token,
            expires_at=started + timedelta(seconds=reply.expires_in),
            fetched_at=self.clock(),
            force_refreshed_at=started if force else (previous.force_refreshed_at if previous else None),
        )

    def _issue(self, cached: CachedToken, source: str) -> IssuedToken:
        self._register(cached.token)
        self._memo = cached
        return IssuedToken(cached.token, cached.expires_at, source)

    def _register(self, token: str) -> None:
        if token in self._seen:
            return
        with self._seen_lock:
            if token not in self._seen:
                self._seen.add(token)
                if self.on_token is not None:
                    self.on_token(token)


# -- the database store -------------------------------------------------------------------------------------


class DatabaseTokenStore:
    """The cache row in ``wechat_access_token``, on connections of its own.

    Never uses ``db.session``: taking the lock or committing must not touch a caller's unit of work.
    """

    kind = "database"

    def __init__(self, engine: sa.Engine, appid: str, lock_timeout_seconds: float = 60.0) -> None:
        self.engine = engine
        self.appid = appid
        self.table = AccessTokenCache.__table__
        self.lock_timeout_ms = int(lock_timeout_seconds * 1000)
        digest = hashlib.sha256(f"tongzhi:wechat-token:{appid}".encode()).digest()
        self.advisory_key = int.from_bytes(digest[:8], "big", signed=True)

    def read(self) -> CachedToken | None:
        with self.engine.connect() as connection:
            return _DatabaseSlot(connection, self).read()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[TokenSlot]:
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                # SQLite has one writer at a time: BEGIN IMMEDIATE takes the write lock up front, and the
                # busy timeout makes the other processes queue behind it instead of failing.
                connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield _DatabaseSlot(connection, self)
                except BaseException:
                    connection.exec_driver_sql("ROLLBACK")
                    raise
                connection.exec_driver_sql("COMMIT")
            else:
                with connection.begin():
                    # An advisory lock works before the row exists; it is released at commit.
                    connection.execute(sa.text(f"SET LOCAL lock_timeout = {self.lock_timeout_ms}"))
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(self.advisory_key)))
                    yield _DatabaseSlot(connection, self)

    def close(self) -> None:
        """Nothing to close: connections go back to the app's pool."""


class _DatabaseSlot:
    def __init__(self, connection: sa.Connection, store: DatabaseTokenStore) -> None:
        self.connection = connection
        self.table = store.table
        self.appid = store.appid

    def read(self) -> CachedToken | None:
        t = self.table.c
        row = self.connection.execute(
            sa.select(t.token, t.expires_at, t.fetched_at, t.force_refreshed_at).where(t.appid == self.appid)
        ).first()
        if row is None:
            return None
        return CachedToken(row.token, row.expires_at, row.fetched_at, row.force_refreshed_at)

    def write(self, cached: CachedToken) -> None:
        values = {
            "token": cached.token,
            "expires_at": cached.expires_at,
            "fetched_at": cached.fetched_at,
            "force_refreshed_at": cached.force_refreshed_at,
        }
        # The lock is held, so update-then-insert cannot race with another writer.
        result = self.connection.execute(
            sa.update(self.table).where(self.table.c.appid == self.appid).values(**values)
        )
        if result.rowcount == 0:
            self.connection.execute(sa.insert(self.table).values(appid=self.appid, **values))


# -- the Redis store ----------------------------------------------------------------------------------------

_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
# The entry outlives the token so that force_refreshed_at keeps limiting force refreshes.
_REDIS_ENTRY_SECONDS = 2 * 86400


class RedisTokenStore:
    """The cache entry ``<prefix>token:<appid>`` (JSON) with a ``SET NX PX`` lock beside it.

    :param lock_ttl: how long a lock survives a holder that died; longer than a refresh can take.
    """

    kind = "redis"

    def __init__(
        self, client: Any, appid: str, prefix: str = DEFAULT_REDIS_PREFIX, lock_ttl: float = 30.0
    ) -> None:
        self.client = client
        self.key = f"{prefix}token:{appid}"
        self.lock_key = f"{prefix}token-lock:{appid}"
        self.lock_ttl_ms = int(lock_ttl * 1000)
        self._release = client.register_script(_RELEASE_SCRIPT)

    def read(self) -> CachedToken | None:
        return _RedisSlot(self).read()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[TokenSlot]:
        owner = secrets.token_hex(16)
        deadline = time.monotonic() + self.lock_ttl_ms / 1000 + 5
        delay = 0.005
        while not self.client.set(self.lock_key, owner, nx=True, px=self.lock_ttl_ms):
            if time.monotonic() > deadline:
                raise WeChatError(
                    None, "Timed out waiting for the access-token lock in Redis", ErrorCategory.TRANSIENT
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield _RedisSlot(self)
        finally:
            # Delete only our own lock: if it expired and another process took it, leave theirs alone.
            self._release(keys=[self.lock_key], args=[owner])

    def close(self) -> None:
        self.client.close()


class _RedisSlot:
    def __init__(self, store: RedisTokenStore) -> None:
        self.store = store

    def read(self) -> CachedToken | None:
        raw = self.store.client.get(self.store.key)
        if raw is None:
            return None
        entry = json.loads(raw)
        forced = entry.get("force_refreshed_at")
        return CachedToken(
            token=entry["token"],
            expires_at=datetime.fromtimestamp(entry["expires_at"], UTC),
            fetched_at=datetime.fromtimestamp(entry["fetched_at"], UTC),
            force_refreshed_at=None if forced is None else datetime.fromtimestamp(forced, UTC),
        )

    def write(self, cached: CachedToken) -> None:
        entry = {
            "token": cached.token,
            "expires_at": cached.expires_at.timestamp(),
            "fetched_at": cached.fetched_at.timestamp(),
            "force_refreshed_at": None
            if cached.force_refreshed_at is None
            else cached.force_refreshed_at.timestamp(),
        }
        self.store.client.set(self.store.key, json.dumps(entry), ex=_REDIS_ENTRY_SECONDS)


# -- wiring -------------------------------------------------------------------------------------------------


def token_service_for(app: Flask, fetch: Callable[[bool], StableToken], appid: str) -> TokenService:
    """The token service for ``app``'s settings: Redis when ``REDIS_URL`` is set, else the database."""
    config: Mapping[str, Any] = app.config
    timeouts = float(config.get("WECHAT_CONNECT_TIMEOUT", 3.05)) + float(
        config.get("WECHAT_READ_TIMEOUT", 10.0)
    )
    # A refresh is at most two WeChat calls (normal, then force); a lock must outlive that.
    lock_ttl = 2 * timeouts + 5
    store: TokenStore
    if config.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(
            config["REDIS_URL"], decode_responses=True, socket_timeout=5, socket_connect_timeout=3
        )
        store = RedisTokenStore(
            client,
            appid,
            prefix=config.get("WECHAT_TOKEN_REDIS_PREFIX", DEFAULT_REDIS_PREFIX),
            lock_ttl=lock_ttl,
        )
    else:
        with app.app_context():
            engine = db.engine
        store = DatabaseTokenStore(engine, appid, lock_timeout_seconds=lock_ttl * 2)
    redactor = app.extensions.get("secret_redactor")
    return TokenService(
        fetch,
        store,
        refresh_margin=timedelta(
            seconds=float(config.get("WECHAT_TOKEN_REFRESH_MARGIN", DEFAULT_REFRESH_MARGIN_SECONDS))
        ),
        force_interval=timedelta(
            minutes=float(config.get("WECHAT_TOKEN_FORCE_REFRESH_MINUTES", DEFAULT_FORCE_REFRESH_MINUTES))
        ),
        on_token=redactor.add if redactor is not None else None,
    )
