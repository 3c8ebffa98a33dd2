"""Many rows through one INSERT or UPDATE, with SQLAlchemy's type conversion but not its per-row cost.

A Core ``session.execute(statement, rows)`` runs every row through the compiler's parameter
construction: about as much CPU as SQLite spends writing the row (bench/dispatch.py, docs/benchmarks.md),
and the dispatch hot path writes several rows per message. ``BulkWrite`` compiles its statement once per
dialect and parameter names, converts each row with the same bind processors SQLAlchemy would use
(``UTCDateTime``, enums, JSON...), and hands the rows to the driver's ``executemany``.

Used only where rows are many and uniform (the dispatch engine and the grant ledger's batches): every
row of one call carries the same keys, one per bind parameter, and a column with a Python-side default
must be among them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class _Prepared:
    sql: str
    keys: tuple[str, ...]  # the row key behind each driver parameter, in the driver's order
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, bind processor)
    driver_names: tuple[str, ...] | None  # None: positional paramstyle (SQLite); else the names (psycopg)


def _memoized(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A batch repeats values (one timestamp, a handful of states): convert each distinct one once."""
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        key = (type(value), value)  # True == 1 == 1.0, but they are stored differently
        try:
            return seen[key]
        except KeyError:
            converted = seen[key] = process(value)
            return converted
        except TypeError:  # unhashable (a JSON document)
            return process(value)

    return convert


class BulkWrite:
    """One INSERT or UPDATE statement, executed for many rows at once.

    Every bind parameter is named by a row key (``sa.bindparam("b_id")``, or the column names of an
    ``insert(table)``) and every row carries all of them; write ``sa.null()`` for a fixed NULL.
    """

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._prepared: dict[tuple[str, tuple[str, ...]], _Prepared] = {}

    def execute(
        self, session: Session | scoped_session | sa.Connection, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Write ``rows`` (mappings with the same keys) in the caller's transaction; nothing is committed."""
        if not rows:
            return
        connection = session if isinstance(session, sa.Connection) else session.connection()
        prepared = self._prepare(connection.dialect, tuple(rows[0]))
        keys = prepared.keys
        get = itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
        processors = [(position, _memoized(process)) for position, process in prepared.processors]
        converted: list[Any] = []
        for row in rows:
            values = list(get(row))
            for position, process in processors:
                values[position] = process(values[position])
            converted.append(values)
        if prepared.driver_names is None:
            parameters: list[Any] = [tuple(values) for values in converted]
        else:
            names = prepared.driver_names
            parameters = [dict(zip(names, values, strict=True)) for values in converted]
        connection.exec_driver_sql(prepared.sql, parameters)

    def _prepare(self, dialect: Dialect, keys: tuple[str, ...]) -> _Prepared:
        cache_key = (dialect.name, keys)
        prepared = self._prepared.get(cache_key)
        if prepared is not None:
            return prepared
        compiled = self.statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True)
        assert isinstance(compiled, SQLCompiler)
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        order = list(compiled.positiontup or ()) if compiled.positional else list(by_name)
        missing = [name for name in order if name not in keys]
        if missing:
            # Includes columns with Python-side defaults (``default=``, ``onupdate=``): SQLAlchemy applies
            # those per row in its execution context, which this path skips.
            raise ValueError(f"bulk write: the rows give no value for {', '.join(missing)}")
        processors = []
        for position, name in enumerate(order):
            process = by_name[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((position, process))
        escaped = compiled.escaped_bind_names or {}
        prepared = _Prepared(
            compiled.string,
            tuple(order),
            tuple(processors),
            None if compiled.positional else tuple(escaped.get(name, name) for name in order),
        )
        self._prepared[cache_key] = prepared
        return prepared
