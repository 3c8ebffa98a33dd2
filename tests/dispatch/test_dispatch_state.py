"""The shared dispatch-state row: there from the migration on, and created without a race when missing."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from dashboard.dispatch.claim import load_dispatch_state
from dashboard.dispatch.write_lock import write_transaction
from dashboard.extensions import db
from dashboard.models import DispatchState


def test_the_migration_creates_the_row(app, backend):
    if backend != "sqlite":
        pytest.skip("the PostgreSQL fixture truncates every table between tests")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DispatchState)) == 1


def test_workers_loading_state_together_on_an_empty_table_both_succeed(app, backend):
    """Both see no row before either inserts (held at a barrier just before the INSERT): before the fix,
    the second died with UniqueViolation pk_dispatch_state."""
    if backend != "postgresql":
        pytest.skip("SQLite's single writer serialises the two loads; the race needs row locks")
    with app.app_context():
        engine = db.engine
        with engine.begin() as connection:
            connection.execute(sa.delete(DispatchState.__table__))
        both_read = threading.Barrier(2, timeout=10)

        def hold_inserts(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO DISPATCH_STATE"):
                both_read.wait()

        sa.event.listen(engine, "before_cursor_execute", hold_inserts)
        errors: list[BaseException] = []
        loaded: list[tuple[int, int]] = []

        def load() -> None:
            try:
                with write_transaction(engine) as session:
                    state = load_dispatch_state(session, lock=True)
                    loaded.append((state.id, state.rate_per_second))
            except BaseException as exc:  # reported below, with the thread's own exception
                errors.append(exc)

        threads = [threading.Thread(target=load) for _ in range(2)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        finally:
            sa.event.remove(engine, "before_cursor_execute", hold_inserts)
        assert errors == []
        assert loaded == [(1, 500), (1, 500)]
        assert db.session.scalar(sa.select(sa.func.count()).select_from(DispatchState)) == 1
