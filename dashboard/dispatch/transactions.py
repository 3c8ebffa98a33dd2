"""One way to take the write lock for a batch, on both databases.

SQLite has one writer: ``BEGIN IMMEDIATE`` takes the lock up front (the busy timeout queues the
others) so two workers never both read a row as due. PostgreSQL takes row locks instead: the caller
selects ``FOR UPDATE SKIP LOCKED`` and the dispatch-state row ``FOR UPDATE``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.orm import Session


@contextlib.contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[Session]:
    """A session inside one committed-or-rolled-back transaction holding the write lock (SQLite)."""
    with Session(engine, expire_on_commit=False) as session:
        if engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()
