"""Recording a prompt's answers in a handful of statements: read and decide first, then write once.

``services.record_answers`` locks each balance row, then reads and writes it, one template at a time
(about 15 statements for a three-template report, all under SQLite's one write lock). The mini-program's
report (``POST /api/mp/grants``) goes through here instead:

1. :func:`plan_answers` reads, without writing, in one query: that the user is still there, the
   catalog's kinds, and the user's balances joined to the pairing candidates of every template the
   report names; it decides each answer with the same rules (``services._decide``).
2. The caller takes the write lock (SQLite) and writes its own row (the grant report).
3. :func:`apply_answers` writes every decided balance in one multi-row upsert that returns the new
   values, and the events in one statement. On PostgreSQL, :func:`apply_report_in_one_statement`
   writes the report row, the balances and the events in one statement instead (one round trip).

The decisions were made on values read before the lock, so the upsert only replaces a balance row
whose ``updated_at`` is still the one read (every write of a balance sets it, and every answer event
of a user and template goes with a write of that balance, so an unchanged ``updated_at`` also means
unchanged pairing candidates). A row inserted since, or changed since, is not touched:
:func:`apply_answers` then returns None and the caller rolls back and records the report the locking
way. Reports that need a kind conversion, or name a template twice, go the locking way from the start
(``AnswerPlan.fast`` is False).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.engine import Dialect

from ..models import WechatUser, utcnow
from ..models.grants import (
    ACCEPT_STATUSES,
    PROMPT_STATUSES,
    GrantBalance,
    GrantEvent,
    GrantReport,
    GrantSource,
)
from .events import add_events
from .kinds import UNKNOWN, TemplateInfo, catalog_kind, known_template
from .services import PAIRED_SOURCES, AnySession, LedgerPolicy, _answer_class, _decide


@dataclass(frozen=True)
class BalanceState:
    """A balance row's values (duck-types ``GrantBalance`` for ``services.balance_json``)."""

    template_id: str
    kind: str
    template_known: bool
    credits: int
    active: bool
    last_status: str
    granted_at: datetime | None
    updated_at: datetime | None  # None: no row when it was read


@dataclass
class AnswerPlan:
    """What :func:`plan_answers` read and decided; :func:`apply_answers` writes it."""

    user_id: int
    source: str
    when: datetime
    answers: list[tuple[str, str]]
    infos: dict[str, TemplateInfo]
    balances: dict[str, BalanceState]  # every balance of the user, as read
    partners: dict[str, tuple[int, int]]  # template -> (event id, credit_delta) it pairs with
    scene: str | None
    page: str | None
    fast: bool


# Built once: an alias of a wide table costs a column proxy per column each time it is made.
_CANDIDATE = GrantEvent.__table__.alias("candidate")
_LATER = GrantEvent.__table__.alias("later_event")
_WRITTEN = ("credits", "active", "last_status", "granted_at", "updated_at")


class UnknownUser(LookupError):
    """The user the plan was asked for is not there (deleted, or the openid does not match)."""


@functools.cache
def _plan_statement(classes: tuple[tuple[str, ...], ...], catalog: int):
    """Everything a report reads, in one query: the user's row (it must still be there, with the
    openid its token names), the catalog's kind of each of ``catalog`` templates (scalar subqueries,
    NULL when unknown, repeated on every row), and the user's balances outer-joined to the pairing
    candidates of one template per entry of ``classes`` (its answer's class). Built once per shape:
    building a statement costs more than running it."""
    user = WechatUser.__table__
    balance = GrantBalance.__table__
    kinds = [catalog_kind(sa.bindparam(f"catalog_{n}")) for n in range(catalog)]
    columns = (
        user.c.id,
        *(sa.null() if kind is None else kind for kind in kinds),
        balance.c.template_id,
        balance.c.kind,
        balance.c.template_known,
        balance.c.credits,
        balance.c.active,
        balance.c.last_status,
        balance.c.granted_at,
        balance.c.updated_at,
    )
    where = and_(user.c.id == sa.bindparam("user_id"), user.c.openid == sa.bindparam("openid"))
    joined = user.outerjoin(balance, balance.c.user_id == user.c.id)
    if not classes:
        return select(*columns, sa.null(), sa.null(), sa.null()).select_from(joined).where(where)
    event, later = _CANDIDATE, _LATER
    when = GrantEvent.__table__.c.occurred_at.type
    on = and_(
        event.c.user_id == balance.c.user_id,
        event.c.template_id == balance.c.template_id,
        event.c.source == sa.bindparam("other"),
        event.c.pairs_with_id.is_(None),
        event.c.occurred_at >= sa.bindparam("earliest", type_=when),
        event.c.occurred_at <= sa.bindparam("latest", type_=when),
        or_(
            *(
                # Equalities rather than IN (…): an IN list is re-expanded at every execution.
                and_(
                    event.c.template_id == sa.bindparam(f"template_{n}"),
                    or_(*(event.c.status == status for status in statuses)),
                )
                for n, statuses in enumerate(classes)
            )
        ),
        ~exists().where(later.c.pairs_with_id == event.c.id),
    )
    return (
        select(*columns, event.c.id, event.c.credit_delta, event.c.occurred_at)
        .select_from(joined.outerjoin(event, on))
        .where(where)
    )


_UPSERTED = ("user_id", "template_id", "kind", "template_known", "credits", "active", "last_status")
_UPSERTED += _WRITTEN[3:]  # granted_at, updated_at


@functools.cache
def _upsert_statement(rows: int, checked: int) -> sa.TextClause:
    """INSERT of ``rows`` balances; on conflict, replace the row only when it is one of ``checked``
    (template, updated_at) pairs. Text, built once per shape: a multi-row insert construct is compiled
    again at every execution (SQLAlchemy does not cache it), which cost more than the statement."""
    table = GrantBalance.__table__
    values = ", ".join("(" + ", ".join(f":{column}_{n}" for column in _UPSERTED) + ")" for n in range(rows))
    unchanged = " OR ".join(
        f"(grant_balance.template_id = :seen_template_{n} AND grant_balance.updated_at = :seen_at_{n})"
        for n in range(checked)
    )
    # Only fixed column names and numbered parameter names go into the text; values are bound.
    sql = "".join(
        [
            "INSERT INTO grant_balance (",
            ", ".join(_UPSERTED),
            ") VALUES ",
            values,
            " ON CONFLICT (user_id, template_id) DO UPDATE SET ",
            ", ".join(f"{name} = excluded.{name}" for name in _WRITTEN),
            " WHERE ",
            unchanged or "1 = 0",
            " RETURNING template_id, credits, active",
        ]
    )
    binds = [
        sa.bindparam(f"{column}_{n}", type_=table.c[column].type) for n in range(rows) for column in _UPSERTED
    ]
    binds += [sa.bindparam(f"seen_template_{n}", type_=table.c.template_id.type) for n in range(checked)]
    binds += [sa.bindparam(f"seen_at_{n}", type_=table.c.updated_at.type) for n in range(checked)]
    return sa.text(sql).bindparams(*binds).columns(table.c.template_id, table.c.credits, table.c.active)


def plan_answers(
    session: AnySession,
    user_id: int,
    answers: Iterable[tuple[str, str]],
    *,
    openid: str,
    source: GrantSource | str,
    policy: LedgerPolicy,
    occurred_at: datetime | None = None,
    scene: str | None = None,
    page: str | None = None,
) -> AnswerPlan:
    """Read what the answers need (one query, no write) and say whether the fast way applies.

    :raise UnknownUser: no user ``user_id`` with ``openid`` (a token's user deleted since it was issued).
    :raise ValueError: an unknown status (callers validate input first).
    """
    source = GrantSource(source).value
    answers = list(answers)
    for _, status in answers:
        if status not in PROMPT_STATUSES:
            raise ValueError(f"unknown grant status {status!r}")
    when = occurred_at or utcnow()
    named = sorted({template_id for template_id, _ in answers})
    # The pairing candidates of every template in one join: the same conditions as
    # ``services._find_partner``, per template with its answer's class (accept or reject).
    pairing = [
        (template_id, status)
        for template_id, status in answers
        if source in PAIRED_SOURCES and status in (*ACCEPT_STATUSES, "reject")
    ]
    statement = _plan_statement(tuple(_answer_class(status) for _, status in pairing), len(named))
    params: dict[str, Any] = {"user_id": user_id, "openid": openid}
    params.update({f"catalog_{n}": template_id for n, template_id in enumerate(named)})
    if pairing:
        params.update(
            other=(
                GrantSource.popup_event.value
                if source == GrantSource.client.value
                else GrantSource.client.value
            ),
            earliest=when - policy.pairing_window,
            latest=when + policy.pairing_window,
            **{f"template_{n}": template_id for n, (template_id, _) in enumerate(pairing)},
        )
    rows = session.connection().execute(statement, params).all()
    if not rows:
        raise UnknownUser(user_id)
    infos = {
        template_id: UNKNOWN if kind is None else known_template(kind)
        for template_id, kind in zip(named, rows[0][1 : 1 + len(named)], strict=True)
    }
    balances: dict[str, BalanceState] = {}
    partners: dict[str, tuple[int, int]] = {}
    earliest: dict[str, tuple[datetime, int]] = {}
    first = 1 + len(named)
    for row in rows:
        template_id = row[first]
        if template_id is None:  # the user has no balance yet
            continue
        balances[template_id] = BalanceState(
            template_id=template_id,
            kind=row[first + 1],
            template_known=bool(row[first + 2]),
            credits=row[first + 3],
            active=bool(row[first + 4]),
            last_status=row[first + 5] or "",
            granted_at=row[first + 6],
            updated_at=row[first + 7],
        )
        event_id, delta, occurred = row[first + 8], row[first + 9], row[first + 10]
        if event_id is not None and (
            template_id not in earliest or (occurred, event_id) < earliest[template_id]
        ):
            earliest[template_id] = (occurred, event_id)
            partners[template_id] = (event_id, delta)
    in_order = [template_id for template_id, _ in answers]
    fast = len(named) == len(in_order) and not any(
        infos[t].known
        and t in balances
        and (balances[t].kind != infos[t].kind or not balances[t].template_known)
        for t in in_order
    )
    return AnswerPlan(
        user_id=user_id,
        source=source,
        when=when,
        answers=answers,
        infos=infos,
        balances=balances,
        partners=partners,
        scene=scene,
        page=page,
        fast=fast,
    )


@dataclass
class _Decided:
    """A fast plan's writes: the balances (template-id order), the events, the rows to check."""

    states: dict[str, BalanceState]
    rows: list[dict[str, Any]]
    events: list[dict[str, Any]]
    checked: list[str]  # templates whose row must still have the ``updated_at`` read


def _decide_plan(plan: AnswerPlan, policy: LedgerPolicy, report_id: int | None) -> _Decided:
    if not plan.fast:
        raise ValueError("this plan must be recorded the locking way")
    now = utcnow()
    decided: dict[str, BalanceState] = {}
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for template_id, status in plan.answers:
        info = plan.infos[template_id]
        before = plan.balances.get(template_id) or BalanceState(
            template_id=template_id,
            kind=info.kind,
            template_known=info.known,
            credits=0,
            active=False,
            last_status="",
            granted_at=None,
            updated_at=None,
        )
        partner = plan.partners.get(template_id)
        credits, active, delta, note, granted_at = _decide(
            before.kind, before.credits, before.active, plan.source, status, partner, policy, plan.when
        )
        decided[template_id] = replace(
            before,
            credits=credits,
            active=active,
            last_status=status,
            granted_at=granted_at or before.granted_at,
            updated_at=now,
        )
        events.append(
            {
                "user_id": plan.user_id,
                "template_id": template_id,
                "template_known": before.template_known,
                "kind": before.kind,
                "source": plan.source,
                "status": status,
                "credit_delta": delta,
                "credits_after": credits,
                "active_after": active,
                "scene": plan.scene,
                "page": plan.page,
                "note": note,
                "report_id": report_id,
                "push_id": None,
                "delivery_id": None,
                "pairs_with_id": partner[0] if partner is not None else None,
                "occurred_at": plan.when,
                "created_at": now,
            }
        )
    # Template-id order: the rows are locked in the order ``record_answers`` locks them (no deadlock).
    for template_id in sorted(decided):
        state = decided[template_id]
        rows.append(
            {
                "user_id": plan.user_id,
                "template_id": template_id,
                "kind": state.kind,
                "template_known": state.template_known,
                "credits": state.credits,
                "active": state.active,
                "last_status": state.last_status,
                "granted_at": state.granted_at,
                "updated_at": now,
            }
        )
    checked = [template_id for template_id in sorted(decided) if template_id in plan.balances]
    return _Decided(decided, rows, events, checked)


def _after(plan: AnswerPlan, decided: _Decided, written: dict[str, tuple[int, bool]]) -> list[BalanceState]:
    """Every balance of the user after the answers, in template-id order (``written``: template ->
    the credits and active the upsert returned)."""
    after = dict(plan.balances)
    for template_id, state in decided.states.items():
        credits, active = written[template_id]
        after[template_id] = replace(state, credits=credits, active=bool(active))
    return [after[template_id] for template_id in sorted(after)]


def apply_answers(
    session: AnySession, plan: AnswerPlan, policy: LedgerPolicy, *, report_id: int | None = None
) -> list[BalanceState] | None:
    """Write a fast plan: one upsert of the balances (returning them), one insert of the events.

    :returns: every balance of the user after the answers, by template id; None when a balance
        changed since it was read (nothing of the events is written then; the caller rolls back).
    """
    decided = _decide_plan(plan, policy, report_id)
    params: dict[str, Any] = {}
    for n, row in enumerate(decided.rows):
        params.update({f"{column}_{n}": row[column] for column in _UPSERTED})
    for n, template_id in enumerate(decided.checked):
        params[f"seen_template_{n}"] = template_id
        params[f"seen_at_{n}"] = plan.balances[template_id].updated_at
    statement = _upsert_statement(len(decided.rows), len(decided.checked))
    written = {
        row.template_id: (row.credits, row.active) for row in session.connection().execute(statement, params)
    }
    if len(written) != len(decided.rows):
        return None
    add_events(session, decided.events)
    return _after(plan, decided, written)


REPORT_COLUMNS = ("user_id", "idempotency_key", "body_digest", "answers", "scene", "page", "created_at")
_EVENT_COLUMNS = tuple(
    column.name for column in GrantEvent.__table__.columns if column.name not in ("id", "report_id")
)


#: The SQLSTATE of ``tongzhi_refuse_stale_read`` (migration 0032).
STALE_READ_SQLSTATE = "TZ001"


class StaleRead(Exception):
    """A balance changed between a report's read and its write: nothing was written."""


@functools.cache
def _one_statement_sql(dialect: Dialect) -> str:
    """The report, the balances and the events in one PostgreSQL statement (data-modifying CTEs), so a
    report's writes are one round trip instead of three (issue 13). The rows travel as one JSON array
    per table, read back with the table's own row type (``json_populate_recordset``): the text is the
    same for every report (psycopg parses it once), and dumping three JSON strings costs far less
    than a parameter (or an array) per column.

    A statement is atomic, but an upsert that skips a changed row is not a failure: the last column
    calls ``tongzhi_refuse_stale_read`` (migration 0032) when fewer balances were written than
    decided, which aborts the whole statement. It is evaluated only when the report row was inserted
    (the final select has no row on a replayed key, and then nothing else was written either)."""
    report = GrantReport.__table__
    quote = dialect.identifier_preparer.quote
    report_values = ", ".join(
        f"CAST(%s AS {report.c[name].type.compile(dialect=dialect)})" for name in REPORT_COLUMNS
    )
    balance_columns = ", ".join(map(quote, _UPSERTED))
    event_columns = ", ".join(map(quote, _EVENT_COLUMNS))
    # Only fixed table and column names go into the text; values are bound.
    return f"""
WITH report AS (
    INSERT INTO grant_report ({", ".join(map(quote, REPORT_COLUMNS))}) VALUES ({report_values})
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING id
), balance AS (
    INSERT INTO grant_balance ({balance_columns})
    SELECT {balance_columns} FROM json_populate_recordset(NULL::grant_balance, %s)
    WHERE EXISTS (SELECT FROM report)
    ON CONFLICT (user_id, template_id) DO UPDATE
    SET {", ".join(f"{name} = excluded.{name}" for name in _WRITTEN)}
    WHERE (grant_balance.template_id, grant_balance.updated_at) IN (
        SELECT template_id, updated_at FROM json_populate_recordset(NULL::grant_balance, %s)
    )
    RETURNING template_id, credits, active
), event AS (
    INSERT INTO grant_event ({event_columns}, report_id)
    SELECT {", ".join(f"answer.{quote(name)}" for name in _EVENT_COLUMNS)}, report.id
    FROM json_populate_recordset(NULL::grant_event, %s) AS answer CROSS JOIN report
)
SELECT report.id, balance.template_id, balance.credits, balance.active,
    CASE WHEN (SELECT count(*) FROM balance) = %s THEN 0
    ELSE tongzhi_refuse_stale_read('a grant balance changed since the report read it') END
FROM report LEFT JOIN balance ON true"""  # noqa: S608


@functools.cache
def _report_processors(dialect: Dialect) -> tuple:
    """The bind processor (or None) of each of ``REPORT_COLUMNS``: the report row's values are bound
    one by one, converted as SQLAlchemy would (``UTCDateTime``, JSON)."""
    table = GrantReport.__table__
    return tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in REPORT_COLUMNS)


def _json_rows(rows: list[dict[str, Any]]) -> str:
    """Rows as a JSON array for ``json_populate_recordset`` (timestamps in ISO 8601, with their zone)."""
    return json.dumps(rows, default=datetime.isoformat, separators=(",", ":"))


def apply_report_in_one_statement(
    session: AnySession, plan: AnswerPlan, policy: LedgerPolicy, report: dict[str, Any]
) -> tuple[int | None, list[BalanceState] | None]:
    """On PostgreSQL, the report row and :func:`apply_answers`' writes in one statement, which needs
    no transaction around it: it writes everything or nothing.

    ``report``: the grant report's columns. The report is inserted unless the user already used its
    idempotency key; only then are the balances upserted and the events written.

    :returns: (the report's id, the balances after); (None, None) when the key was used already
        (nothing written).
    :raise StaleRead: a balance changed since it was read (nothing written; if the session is in a
        transaction, it is aborted: the caller rolls back).
    """
    decided = _decide_plan(plan, policy, None)
    connection = session.connection()
    dialect = connection.dialect
    report_values = [
        process(report[name]) if process else report[name]
        for name, process in zip(REPORT_COLUMNS, _report_processors(dialect), strict=True)
    ]
    seen = [
        {"template_id": template_id, "updated_at": plan.balances[template_id].updated_at}
        for template_id in decided.checked
    ]
    events = [{name: row[name] for name in _EVENT_COLUMNS} for row in decided.events]
    parameters = (
        *report_values,
        _json_rows(decided.rows),
        _json_rows(seen),
        _json_rows(events),
        len(decided.rows),
    )
    try:
        rows = connection.exec_driver_sql(_one_statement_sql(dialect), parameters).all()
    except sa.exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == STALE_READ_SQLSTATE:
            raise StaleRead from None
        raise
    if not rows:
        return None, None
    written = {template_id: (credits, active) for _, template_id, credits, active, _ in rows if template_id}
    return rows[0][0], _after(plan, decided, written)
