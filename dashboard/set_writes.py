"""Many rows in ONE statement on PostgreSQL, with a short, constant statement text.

psycopg's ``executemany`` (``dashboard.bulk_writes``) pipelines its rows, but the server still plans and
runs one statement per row; the dispatch engine writes a few rows per message, so on PostgreSQL its
finalize sends one statement per batch instead (issue 13; bench/dispatch.py counts the rows). The rows
travel as one array per column, expanded by ``unnest`` (``INSERT … SELECT * FROM unnest(…)``,
``UPDATE … FROM unnest(…) AS v(…)``): the same set-based statement as a ``VALUES`` list, but its text
does not grow with the batch. psycopg converts placeholders in Python and caches that only for a text
under 4 KB: a 256-row ``VALUES`` list (or ``IN`` list) was parsed again at every batch, 10 ms of a
worker's CPU each (measured with cProfile on bench/dispatch.py). ``one_of`` is ``IN`` as ``= ANY(array)``
for the same reason.

SQLite runs in-process, where an executemany costs no round trips: callers keep ``BulkWrite`` there.
Values go through the same bind processors SQLAlchemy would apply (``UTCDateTime``, enums...), each
distinct value converted once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, scoped_session

from .bulk_writes import BulkWrite


def is_postgresql(session: Session | scoped_session | sa.Connection) -> bool:
    bind = session if isinstance(session, sa.Connection) else session.get_bind()
    return bind.dialect.name == "postgresql"


def one_of(column: sa.ColumnElement, values: Iterable[Any], dialect_name: str) -> sa.ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(%s)`` with one array parameter."""
    values = list(values)
    if dialect_name == "postgresql":
        return column == sa.any_(sa.bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def _converter(column: sa.Column, dialect: Dialect) -> Callable[[Any], Any] | None:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        key = (type(value), value)
        try:
            return seen[key]
        except KeyError:
            converted = seen[key] = process(value)
            return converted
        except TypeError:  # unhashable
            return process(value)

    return convert


def _array_type(column: sa.Column, dialect: Dialect) -> str:
    """The SQL array type a column's values travel as (text for strings: no silent cut to a length)."""
    kind = column.type
    if isinstance(kind, sa.types.TypeDecorator):
        kind = kind.impl_instance if hasattr(kind, "impl_instance") else kind.impl
    if isinstance(kind, sa.String):
        return "TEXT[]"
    return kind.compile(dialect=dialect) + "[]"


def unnest(
    dialect: Dialect, columns: Sequence[sa.Column], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[list[Any]]]:
    """``unnest(CAST(%b AS INTEGER[]), …)`` for ``rows`` (one value per column, in order), and its
    parameters: one list per column, each value converted by the column type's bind processor. ``%b``:
    psycopg sends the arrays in binary (its text format escapes every string with a regex)."""
    sql = "unnest(" + ", ".join(f"CAST(%b AS {_array_type(c, dialect)})" for c in columns) + ")"
    arrays: list[list[Any]] = []
    for position, column in enumerate(columns):
        values = [row[position] for row in rows]
        convert = _converter(column, dialect)
        arrays.append([convert(v) for v in values] if convert else values)
    return sql, arrays


class MultiRowInsert:
    """``INSERT INTO table (…) SELECT * FROM unnest(…)`` on PostgreSQL; ``BulkWrite``'s executemany elsewhere.

    Like ``BulkWrite``: every row carries the same keys, one per column written, and a column with a
    Python-side default must be among them.
    """

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.fallback = BulkWrite(sa.insert(table))

    def execute(self, session: Session | scoped_session, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        connection = session.connection()
        if connection.dialect.name != "postgresql":
            self.fallback.execute(session, rows)
            return
        dialect = connection.dialect
        keys = list(rows[0])
        columns = [self.table.c[key] for key in keys]
        quote = dialect.identifier_preparer.quote
        source, arrays = unnest(dialect, columns, [[row[key] for key in keys] for row in rows])
        connection.exec_driver_sql(
            f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(c.name) for c in columns)}) "  # noqa: S608
            f"SELECT * FROM {source}",
            tuple(arrays),
        )
