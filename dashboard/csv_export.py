"""CSV downloads, streamed: a BOM and the header first, then one chunk per batch of rows fetched by key
(keyset paging), so memory holds one batch whatever the table's size. Used by the campaign's delivery
log, the deliveries list, the users list and the audit log.

Every text cell goes through :func:`safe_cell`: a spreadsheet would run a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (CSV injection), so such a cell gets a leading ``'``. Times are written
in the operator's zone (config ``TIMEZONE``) with their offset: ``2026-12-02T19:30:00+08:00``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Response, current_app, stream_with_context

from .extensions import db

BATCH = 1000
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell a spreadsheet will not run: text with a formula lead gets a ``'`` first.
    Numbers are written as numbers (``-1`` is WeChat's errcode, not a formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text[:1] in FORMULA_LEADS else text


def operator_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("TIMEZONE") or "Asia/Shanghai")


def local_time(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    """An aware UTC instant as ISO 8601 in the operator's zone, with its offset; "" for None."""
    if value is None:
        return ""
    return value.astimezone(zone or operator_zone()).isoformat(timespec="seconds")


def stream_csv(
    header: Sequence[str],
    statement: sa.Select,
    key: sa.ColumnElement,
    cells: Callable[[Sequence[sa.Row]], Iterable[Sequence[Any]]],
    *,
    batch: int = BATCH,
    descending: bool = False,
) -> Iterator[str]:
    """The rows of ``statement`` as CSV text: the BOM and ``header`` as the first chunk, then one chunk
    per ``batch`` rows, fetched in ``key`` order (``statement`` must select ``key``; its own ORDER BY and
    LIMIT are replaced). ``cells(rows)`` turns one batch into its lines of cells (it may run one query
    of its own per batch); each cell goes through :func:`safe_cell`.

    Between batches the read transaction ends: a long download holds no snapshot (nor, on SQLite, the
    WAL) while the client reads. Nothing was written, so there is nothing to lose.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(header)
    yield "\ufeff" + flush()
    statement = statement.order_by(None).limit(None)
    last = None
    while True:
        query = statement
        if last is not None:
            query = query.where(key < last if descending else key > last)
        rows = db.session.execute(query.order_by(key.desc() if descending else key).limit(batch)).all()
        if not rows:
            return
        for line in cells(rows):
            writer.writerow([safe_cell(cell) for cell in line])
        last = rows[-1]._mapping[key]
        db.session.rollback()
        yield flush()


def csv_response(chunks: Iterator[str], filename: str) -> Response:
    """A download of ``chunks``, streamed with the request's context (gettext, the zone, the session)."""
    response = Response(stream_with_context(chunks), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
