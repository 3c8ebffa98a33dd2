"""Recording a prompt's answers in a handful of statements: read and decide first, then write once.

``services.record_answers`` locks each balance row, then reads and writes it, one template at a time
(about 15 statements for a three-template report, all under SQLite's one write lock). The mini-program's
report (``POST /api/mp/grants``) goes through here instead:

1. :func:`plan_answers` reads, without writing: the catalog's kinds, and in one query the user's
   balances joined to the pairing candidates of every template the report names; it decides each
   answer with the same rules (``services._decide``).
2. The caller takes the write lock (SQLite) and writes its own row (the grant report).
3. :func:`apply_answers` writes every decided balance in one multi-row upsert that returns the new
   values, and the events in one statement.

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
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import and_, exists, or_, select

from ..models import utcnow
from ..models.grants import ACCEPT_STATUSES, PROMPT_STATUSES, GrantBalance, GrantEvent, GrantSource
from .events import add_events
from .kinds import TemplateInfo, lookup_templates
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


@functools.cache
def _plan_statement(classes: tuple[tuple[str, ...], ...]):
    """The user's balances, outer-joined to the pairing candidates of one template per entry of
    ``classes`` (its answer's class). Built once per shape: building a statement costs more than
    running it."""
    balance = GrantBalance.__table__
    columns = (
        balance.c.template_id,
        balance.c.kind,
        balance.c.template_known,
        balance.c.credits,
        balance.c.active,
        balance.c.last_status,
        balance.c.granted_at,
        balance.c.updated_at,
    )
    where = balance.c.user_id == sa.bindparam("user_id")
    if not classes:
        return select(*columns, sa.null(), sa.null(), sa.null()).where(where)
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
        .select_from(balance.outerjoin(event, on))
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
    source: GrantSource | str,
    policy: LedgerPolicy,
    occurred_at: datetime | None = None,
    scene: str | None = None,
    page: str | None = None,
) -> AnswerPlan:
    """Read what the answers need (two queries, no write) and say whether the fast way applies.

    :raise ValueError: an unknown status (callers validate input first).
    """
    source = GrantSource(source).value
    answers = list(answers)
    for _, status in answers:
        if status not in PROMPT_STATUSES:
            raise ValueError(f"unknown grant status {status!r}")
    when = occurred_at or utcnow()
    infos = lookup_templates(session, [template_id for template_id, _ in answers])
    # The pairing candidates of every template in one join: the same conditions as
    # ``services._find_partner``, per template with its answer's class (accept or reject).
    pairing = [
        (template_id, status)
        for template_id, status in answers
        if source in PAIRED_SOURCES and status in (*ACCEPT_STATUSES, "reject")
    ]
    statement = _plan_statement(tuple(_answer_class(status) for _, status in pairing))
    params: dict[str, Any] = {"user_id": user_id}
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
    rows = session.execute(statement, params).all()
    balances: dict[str, BalanceState] = {}
    partners: dict[str, tuple[int, int]] = {}
    earliest: dict[str, tuple[datetime, int]] = {}
    for row in rows:
        template_id = row[0]
        balances[template_id] = BalanceState(
            template_id=template_id,
            kind=row[1],
            template_known=bool(row[2]),
            credits=row[3],
            active=bool(row[4]),
            last_status=row[5] or "",
            granted_at=row[6],
            updated_at=row[7],
        )
        event_id, delta, occurred = row[8], row[9], row[10]
        if event_id is not None and (
            template_id not in earliest or (occurred, event_id) < earliest[template_id]
        ):
            earliest[template_id] = (occurred, event_id)
            partners[template_id] = (event_id, delta)
    named = [template_id for template_id, _ in answers]
    fast = len(set(named)) == len(named) and not any(
        infos[t].known
        and t in balances
        and (balances[t].kind != infos[t].kind or not balances[t].template_known)
        for t in named
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


def apply_answers(
    session: AnySession, plan: AnswerPlan, policy: LedgerPolicy, *, report_id: int | None = None
) -> list[BalanceState] | None:
    """Write a fast plan: one upsert of the balances (returning them), one insert of the events.

    :returns: every balance of the user after the answers, by template id; None when a balance
        changed since it was read (nothing of the events is written then; the caller rolls back).
    """
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
    params: dict[str, Any] = {}
    for n, row in enumerate(rows):
        params.update({f"{column}_{n}": row[column] for column in _UPSERTED})
    for n, template_id in enumerate(checked):
        params[f"seen_template_{n}"] = template_id
        params[f"seen_at_{n}"] = plan.balances[template_id].updated_at
    statement = _upsert_statement(len(rows), len(checked))
    written = {row.template_id: row for row in session.execute(statement, params)}
    if len(written) != len(rows):
        return None
    add_events(session, events)
    after = dict(plan.balances)
    for template_id, state in decided.items():
        row = written[template_id]
        after[template_id] = replace(state, credits=row.credits, active=bool(row.active))
    return [after[template_id] for template_id in sorted(after)]
