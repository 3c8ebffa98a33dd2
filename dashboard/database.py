"""Database wiring: engine options per backend, SQLite pragmas, and migrating to head."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

from .extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000


def init_app(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    if not uri.startswith("sqlite"):
        with app.app_context():
            ping_unless_just_used(db.engine)
    else:  # a file SQLite opens in-process cannot drop its connection: nothing to ping

        def sqlite_pragmas(dbapi_connection, connection_record) -> None:
            # WAL lets the dashboard read while a worker writes; the busy timeout makes writers queue
            # instead of failing with "database is locked"; SQLite enforces foreign keys only when
            # asked. synchronous=FULL (SQLite's default, said out loud): every commit is on disk before
            # it returns. NORMAL would be faster, but a power cut could then undo a send's recorded
            # start after the message went out (sent again on restart) or a grant report already
            # answered (a wasted grant).
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        with app.app_context():
            event.listen(db.engine, "connect", sqlite_pragmas)


#: A pooled connection given back less than this many seconds ago is not pinged before it is reused.
PING_BYPASS_SECONDS = 0.5


def ping_unless_just_used(engine: sa.Engine) -> None:
    """Check a pooled connection before a request uses it, unless it was in use a moment ago.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip, and its CPU, on every request
    (on the mini-program's grant report, one of three; issue 13). A connection given back under
    ``PING_BYPASS_SECONDS`` ago is alive but for a server restart in that instant, the same bet as
    HikariCP's ``aliveBypassWindowMs`` (500 ms); one idle longer (a firewall's timeout, a restart) is
    pinged, and a dead one is replaced before the request sees it: ``DisconnectionError`` makes the
    pool discard it and connect again.
    """
    dialect = engine.dialect

    def remember_use(dbapi_connection, connection_record) -> None:
        connection_record.info["given_back_at"] = time.monotonic()

    def ping_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
        given_back = connection_record.info.get("given_back_at")
        if given_back is not None and time.monotonic() - given_back < PING_BYPASS_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise sa.exc.DisconnectionError(str(error)) from error
            raise

    event.listen(engine, "connect", remember_use)  # a new connection needs no ping
    event.listen(engine, "checkin", remember_use)
    event.listen(engine, "checkout", ping_if_idle)


def upgrade_to_head(app: Flask) -> None:
    """Apply every pending migration, one process at a time (the embedded default does this on start)."""
    from flask_migrate import upgrade

    lock_path = Path(app.instance_path) / "migrate.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock, app.app_context():
        fcntl.flock(lock, fcntl.LOCK_EX)
        upgrade()
