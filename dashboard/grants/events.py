"""Appending ledger events: the one way rows get into ``grant_event``.

Every event is written with every column (``BulkWrite``'s rule), in one executemany per call, so the
dispatch path's batches, the prompt answers and the kind conversions share one statement.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, scoped_session

from ..bulk_writes import BulkWrite
from ..models.grants import GrantEvent

_INSERT_EVENTS = BulkWrite(insert(GrantEvent.__table__))


def add_events(session: Session | scoped_session, rows: list[dict[str, Any]]) -> None:
    """Append ledger events (every row with every column) in one executemany."""
    _INSERT_EVENTS.execute(session, rows)
