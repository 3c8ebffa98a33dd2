"""The access-token service in one process: caching with expiry, refresh ahead of expiry, invalidation rules.

Cross-process sharing (several OS processes, one WeChat call) is in test_token_sharing.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import AccessTokenCache
from dashboard.wechat.token import DatabaseTokenStore, RedisTokenStore, TokenService


class Clock:
    """Our clock and the sandbox's, moved forward together."""

    def __init__(self, sandbox):
        self.offset = 0.0
        state = sandbox.server.state
        real = state.clock
        state.clock = lambda: real() + self.offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def service_for(app, wechat, **kwargs) -> TokenService:
    """A second token service on the same database, as another process would have."""
    with app.app_context():
        store = DatabaseTokenStore(db.engine, wechat.appid)
    return TokenService(wechat.stable_token, store, **kwargs)


def test_a_token_is_fetched_once_then_served_from_memory_and_the_database(app, wechat, sandbox):
    first = wechat.tokens.get()
    assert first.source == "wechat"
    assert wechat.tokens.get().source == "memory"
    other = service_for(app, wechat).get()
    assert (other.source, other.token) == ("database", first.token)
    assert sandbox.stable_calls() == 1


def test_the_token_is_stored_with_its_expiry(app, wechat):
    before = datetime.now(UTC)
    token = wechat.tokens.get_token()
    with app.app_context():
        row = db.session.get(AccessTokenCache, wechat.appid)
        assert row.token == token
        assert row.expires_at.tzinfo is not None
        assert (
            before + timedelta(seconds=7190) < row.expires_at <= datetime.now(UTC) + timedelta(seconds=7200)
        )
        assert row.force_refreshed_at is None
        assert token not in repr(row)


def test_it_refreshes_ahead_of_expiry_and_not_again_right_after(app, wechat, sandbox):
    clock = Clock(sandbox)
    tokens = service_for(app, wechat, refresh_margin=timedelta(seconds=300), clock=clock)
    first = tokens.get()
    clock.advance(7200 - 400)  # 400 s left: not due yet
    assert tokens.get().source == "memory"
    clock.advance(150)  # 250 s left: due; normal mode hands out the renewed token
    renewed = tokens.get()
    assert renewed.source == "wechat" and renewed.token != first.token
    assert tokens.get().source == "memory"
    assert sandbox.stable_calls() == 2


def test_a_token_wechat_returns_inside_the_margin_is_not_refetched_on_every_call(app, wechat, sandbox):
    # WeChat renews a stable token only in its last minutes; if it hands back the old one, wait a bit.
    clock = Clock(sandbox)
    tokens = service_for(app, wechat, refresh_margin=timedelta(minutes=30), clock=clock)
    first = tokens.get()
    clock.advance(7200 - 1200)  # 20 min left: due by our margin, not yet renewed by WeChat
    again = tokens.get()
    assert (again.source, again.token) == ("wechat", first.token)
    for _ in range(5):
        assert tokens.get().token == first.token
    clock.advance(31)
    assert tokens.get().source == "wechat"
    assert sandbox.stable_calls() == 3


def test_invalidating_a_token_already_replaced_does_not_call_wechat(app, wechat, sandbox):
    old = wechat.tokens.get_token()
    sandbox.expire_tokens()
    other = service_for(app, wechat)
    other.invalidate(old)  # the other process noticed first and refreshed
    new = other.get_token()
    assert new != old
    calls = sandbox.stable_calls()
    wechat.tokens.invalidate(old)
    assert wechat.tokens.get_token() == new
    assert sandbox.stable_calls() == calls


def test_a_rejected_token_still_handed_out_is_force_refreshed_at_most_once_per_interval(app, wechat, sandbox):
    state = sandbox.server.state
    token = wechat.tokens.get_token()
    # WeChat rejected it, yet normal mode still returns it: the one case for a force refresh.
    wechat.tokens.invalidate(token)
    forced = wechat.tokens.get_token()
    assert forced != token
    assert len(state.force_refreshes) == 1
    with app.app_context():
        assert db.session.get(AccessTokenCache, wechat.appid).force_refreshed_at is not None
    # Again, from this process and from another one: no second force refresh within the interval.
    wechat.tokens.invalidate(forced)
    service_for(app, wechat).invalidate(forced)
    assert wechat.tokens.get_token() == forced
    assert len(state.force_refreshes) == 1
    assert sandbox.stable_calls() == 1 + 2 + 1 + 1


def test_the_redis_store_shares_and_locks_like_the_database(redis_url, sandbox):
    import redis

    from dashboard.wechat.client import WeChatClient

    prefix = f"tongzhi-test-{uuid.uuid4().hex[:8]}:"
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with WeChatClient(sandbox.appid, sandbox.secret, sandbox.url) as client:
            first = TokenService(client.stable_token, RedisTokenStore(connection, sandbox.appid, prefix))
            second = TokenService(client.stable_token, RedisTokenStore(connection, sandbox.appid, prefix))
            assert first.get().source == "wechat"
            assert second.get().source == "redis"
            assert first.get_token() == second.get_token()
            assert connection.get(f"{prefix}token-lock:{sandbox.appid}") is None, "the lock was released"
            sandbox.expire_tokens()
            first.invalidate(first.get_token())
            second.invalidate(second.get_token())  # already replaced: no call
            assert first.get_token() == second.get_token()
        assert sandbox.stable_calls() == 2
    finally:
        keys = list(connection.scan_iter(f"{prefix}*"))
        if keys:
            connection.delete(*keys)
        connection.close()


def test_the_database_store_never_touches_the_callers_session(app, wechat, personas):
    from dashboard.models import Operator

    with app.app_context():
        operator = db.session.get(Operator, personas["viewer"].id)
        operator.name = "Uncommitted"
        wechat.tokens.get_token()
        db.session.rollback()
        assert db.session.get(Operator, personas["viewer"].id).name != "Uncommitted"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AccessTokenCache)) == 1


@pytest.mark.parametrize("margin", [timedelta(seconds=300)])
def test_a_token_past_its_expiry_is_never_handed_out(app, wechat, sandbox, margin):
    clock = Clock(sandbox)
    tokens = service_for(app, wechat, refresh_margin=margin, clock=clock)
    first = tokens.get_token()
    clock.advance(7300)
    assert tokens.get_token() != first
