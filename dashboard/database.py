"""Database wiring: engine options per backend, SQLite pragmas, and migrating to head."""

from __future__ import annotations

import fcntl
from pathlib import Path

from flask import Flask
from sqlalchemy import event

from .config import SQLITE_SYNCHRONOUS_LEVELS
from .extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000


def init_app(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    if uri.startswith("sqlite"):
        synchronous = app.config.get("SQLITE_SYNCHRONOUS") or "NORMAL"
        if synchronous not in SQLITE_SYNCHRONOUS_LEVELS:  # a test_config bypasses config.py's check
            raise ValueError(f"SQLITE_SYNCHRONOUS must be one of {SQLITE_SYNCHRONOUS_LEVELS}")

        def sqlite_pragmas(dbapi_connection, connection_record) -> None:
            # WAL lets the dashboard read while a worker writes; the busy timeout makes writers queue
            # instead of failing with "database is locked"; SQLite enforces foreign keys only when
            # asked; synchronous: see config._sqlite_synchronous.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA synchronous={synchronous}")  # one of three fixed words
            cursor.close()

        with app.app_context():
            event.listen(db.engine, "connect", sqlite_pragmas)


def upgrade_to_head(app: Flask) -> None:
    """Apply every pending migration, one process at a time (the embedded default does this on start)."""
    from flask_migrate import upgrade

    lock_path = Path(app.instance_path) / "migrate.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock, app.app_context():
        fcntl.flock(lock, fcntl.LOCK_EX)
        upgrade()
