"""Pooled PostgreSQL connections are pinged before reuse only after sitting idle (dashboard/database.py).

A dead one (the server restarted, a firewall dropped it) is replaced before a request can see it fail; a
connection given back a moment ago is reused without the round trip (issue 13: one of the grant report's
three). Real server, real pool: the connections are ended by the server, as a restart would.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from dashboard.database import PING_BYPASS_SECONDS
from dashboard.extensions import db


@pytest.fixture
def engine(app, backend):
    if backend != "postgresql":
        pytest.skip("a SQLite file cannot drop its connection: nothing is pinged there")
    with app.app_context():
        yield db.engine


def backend_pids(engine, count: int) -> list[int]:
    """Check out ``count`` pooled connections at once, ask each its server process, give them back."""
    connections = [engine.connect() for _ in range(count)]
    try:
        return [c.exec_driver_sql("SELECT pg_backend_pid()").scalar() for c in connections]
    finally:
        for connection in connections:
            connection.close()


def test_a_connection_the_server_ended_is_replaced_before_it_is_used(engine):
    before = backend_pids(engine, 2)
    killer = sa.create_engine(engine.url, poolclass=NullPool)
    with killer.connect() as connection:
        for pid in before:
            assert connection.exec_driver_sql("SELECT pg_terminate_backend(%s)", (pid,)).scalar()
    killer.dispose()
    time.sleep(PING_BYPASS_SECONDS + 0.2)
    after = backend_pids(engine, 2)  # would raise OperationalError if a dead connection were handed out
    assert not set(after) & set(before)


def test_a_connection_given_back_a_moment_ago_is_not_pinged(engine, monkeypatch):
    pings: list[object] = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(
        engine.dialect, "do_ping", lambda connection: pings.append(connection) or ping(connection)
    )
    backend_pids(engine, 1)
    backend_pids(engine, 1)
    assert pings == []
    time.sleep(PING_BYPASS_SECONDS + 0.2)
    backend_pids(engine, 1)
    assert len(pings) == 1
