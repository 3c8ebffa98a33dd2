"""Recording what users allowed, and reading balances back.

Every change to a balance goes with one appended ``GrantEvent`` (``dashboard.models.grants``); nothing
else writes ``grant_balance``. The rules (issue 5, glossary):

* one-time template: +1 credit per accepted prompt (accept, acceptWithAudio and acceptWithAlert all
  count as accept); a prompt's ``reject`` leaves earlier credits alone; a ``reject`` change event (the
  user withdrew in settings) zeroes them; ``ban`` and ``filter`` grant nothing and are recorded;
* long-term template: active after an accept, inactive after a reject (prompt or change event);
* a client report and the popup event of the same prompt count once: an answer is paired with the
  earliest unpaired answer of the same class (accept or reject) from the other source within
  ``GRANT_PAIRING_WINDOW_SECONDS``; it adds a credit only if its source is one of
  ``GRANT_CREDIT_SOURCES`` and its partner did not already add one.

Functions add to the caller's session and flush; the caller (a view, the push endpoint, a worker) commits
once. Each answer first locks its balance row (an UPDATE), so two reports of the same prompt arriving at
once in two processes are serialised and still pair (PostgreSQL row lock; SQLite's single writer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, scoped_session

from ..extensions import db
from ..models import WechatUser, utcnow
from ..models.grants import (
    ACCEPT_STATUSES,
    PROMPT_STATUSES,
    GrantBalance,
    GrantEvent,
    GrantSource,
    LedgerStatus,
    TemplateKindName,
)
from .events import add_events
from .kinds import TemplateInfo, convert_balances, lookup_templates

AnySession = Session | scoped_session
PAIRED_SOURCES = (GrantSource.client.value, GrantSource.popup_event.value)
ONE_TIME = TemplateKindName.one_time.value
LONG_TERM = TemplateKindName.long_term.value


@dataclass(frozen=True)
class LedgerPolicy:
    """The two settings that shape crediting (see ``dashboard.config``)."""

    pairing_window: timedelta
    credit_sources: frozenset[str]

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> LedgerPolicy:
        config = config if config is not None else current_app.config
        return cls(
            pairing_window=timedelta(seconds=int(config.get("GRANT_PAIRING_WINDOW_SECONDS", 600))),
            credit_sources=frozenset(config.get("GRANT_CREDIT_SOURCES", PAIRED_SOURCES)),
        )


def _session(session: AnySession | None) -> AnySession:
    return session if session is not None else db.session


def insert_ignoring_conflicts(
    session: AnySession, table, values: dict[str, Any], keys: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT (keys) DO NOTHING, on SQLite and PostgreSQL alike."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    session.execute(dialect_insert(table).values(**values).on_conflict_do_nothing(index_elements=list(keys)))


@dataclass
class LockedBalance:
    """A balance row's values as read under its lock."""

    kind: str
    known: bool
    credits: int
    active: bool


def lock_balance(
    session: AnySession, user_id: int, template_id: str, info: TemplateInfo | None = None
) -> LockedBalance:
    """Make sure the balance row exists, lock it for this transaction, and return its values.

    One upsert (INSERT … ON CONFLICT DO UPDATE … RETURNING) creates or touches the row: a write, so
    PostgreSQL keeps the row locked until commit and SQLite takes its one write lock, and whatever the
    caller reads next about this user and template cannot change under it. When ``info`` comes from the
    catalog and the row is of the other kind (it was written in a race with the catalog's change of
    kind), the row is converted first, with its ledger event (``kinds.convert_balances``).
    """
    table = GrantBalance.__table__
    now = utcnow()
    kind = info.kind if info is not None else ONE_TIME
    known = info.known if info is not None else False
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(table).values(
        user_id=user_id,
        template_id=template_id,
        kind=kind,
        template_known=known,
        credits=0,
        active=False,
        last_status="",
        updated_at=now,
    )
    returning = (table.c.kind, table.c.template_known, table.c.credits, table.c.active)
    row = session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "template_id"], set_={"updated_at": now}
        ).returning(*returning)
    ).one()
    if known and (row.kind != kind or not row.template_known):
        convert_balances(session, template_id, kind, reason="catalog", user_ids=[user_id])
        row = session.execute(
            select(*returning).where(table.c.user_id == user_id, table.c.template_id == template_id)
        ).one()
    return LockedBalance(
        kind=row.kind, known=bool(row.template_known), credits=row.credits, active=row.active
    )


def write_balance(
    session: AnySession,
    user_id: int,
    template_id: str,
    *,
    credits: int,
    active: bool,
    last_status: str,
    granted_at: datetime | None = None,
) -> None:
    """Set a locked balance row's values (only ever next to the event that explains the change)."""
    table = GrantBalance.__table__
    values: dict[str, Any] = {
        "credits": credits,
        "active": active,
        "last_status": last_status,
        "updated_at": utcnow(),
    }
    if granted_at is not None:
        values["granted_at"] = granted_at
    session.execute(
        update(table).where(table.c.user_id == user_id, table.c.template_id == template_id).values(**values)
    )


_LATER = aliased(GrantEvent, name="later_event")


def _answer_class(status: str) -> tuple[str, ...]:
    return ACCEPT_STATUSES if status in ACCEPT_STATUSES else (status,)


def _find_partner(
    session: AnySession,
    user_id: int,
    template_id: str,
    source: str,
    status: str,
    occurred_at: datetime,
    window: timedelta,
) -> tuple[int, int] | None:
    """The earliest unpaired answer of the same class from the other source within the window."""
    if source not in PAIRED_SOURCES or status not in (*ACCEPT_STATUSES, "reject"):
        return None
    other = GrantSource.popup_event.value if source == GrantSource.client.value else GrantSource.client.value
    later = _LATER
    row = session.execute(
        select(GrantEvent.id, GrantEvent.credit_delta)
        .where(
            GrantEvent.user_id == user_id,
            GrantEvent.template_id == template_id,
            GrantEvent.source == other,
            GrantEvent.status.in_(_answer_class(status)),
            GrantEvent.pairs_with_id.is_(None),
            GrantEvent.occurred_at >= occurred_at - window,
            GrantEvent.occurred_at <= occurred_at + window,
            ~exists().where(later.pairs_with_id == GrantEvent.id),
        )
        .order_by(GrantEvent.occurred_at, GrantEvent.id)
        .limit(1)
    ).first()
    return (row.id, row.credit_delta) if row is not None else None


def _decide(
    kind: str,
    credits: int,
    active: bool,
    source: str,
    status: str,
    partner: tuple[int, int] | None,
    policy: LedgerPolicy,
    when: datetime,
) -> tuple[int, bool, int, str, datetime | None]:
    """What one answer does to a balance: ``(credits, active, credit_delta, note, granted_at)``.

    The crediting rules of this module's docstring, in one place for both ways of recording answers.
    """
    delta = 0
    note = ""
    granted_at = None
    if status in ACCEPT_STATUSES:
        granted_at = when
        if kind == LONG_TERM:
            active = True
        elif source in policy.credit_sources and not (partner is not None and partner[1] > 0):
            delta = 1
        elif partner is not None and partner[1] > 0:
            note = "paired"
        else:
            note = "source_not_crediting"
    elif status == "reject":
        if source == GrantSource.change_event.value:
            delta = -credits
            active = False
        elif kind == LONG_TERM:
            active = False
    return credits + delta, active, delta, note, granted_at


def record_answers(
    user_id: int,
    answers: Iterable[tuple[str, str]],
    *,
    source: GrantSource | str,
    occurred_at: datetime | None = None,
    scene: str | None = None,
    scenes: Mapping[str, str] | None = None,
    page: str | None = None,
    report_id: int | None = None,
    push_id: int | None = None,
    policy: LedgerPolicy | None = None,
    session: AnySession | None = None,
) -> list[dict[str, Any]]:
    """Append one ledger event per ``(template_id, status)`` and update the balances they change.

    ``source`` is ``client`` (the mini-program's report), ``popup_event`` or ``change_event`` (WeChat's
    pushes). Statuses are WeChat's (``PROMPT_STATUSES``); a change event's ``reject`` zeroes one-time
    credits and deactivates a long-term grant. Unknown templates are recorded as one-time and flagged
    (``template_known`` false). ``scenes`` gives a scene per template (a popup event's PopupScene)
    where it differs from ``scene``.

    The balance rows are locked in template-id order before anything else, so a client report and a
    popup event naming the same templates in another order queue behind each other instead of
    deadlocking.

    :returns: the appended events' values.
    :raise ValueError: an unknown status or source (callers validate input first).
    """
    session = _session(session)
    policy = policy or LedgerPolicy.from_config()
    source = GrantSource(source).value
    if source == GrantSource.send_result.value:
        raise ValueError("send results go through dashboard.grants.ledger")
    answers = list(answers)
    for _, status in answers:
        if status not in PROMPT_STATUSES:
            raise ValueError(f"unknown grant status {status!r}")
    when = occurred_at or utcnow()
    infos = lookup_templates(session, [template_id for template_id, _ in answers])
    locked = {tid: lock_balance(session, user_id, tid, infos[tid]) for tid in sorted(infos)}
    events = []
    for template_id, status in answers:
        balance = locked[template_id]
        partner = _find_partner(session, user_id, template_id, source, status, when, policy.pairing_window)
        credits, active, delta, note, granted_at = _decide(
            balance.kind, balance.credits, balance.active, source, status, partner, policy, when
        )
        balance.credits, balance.active = credits, active  # a template named twice sees its own change
        write_balance(
            session,
            user_id,
            template_id,
            credits=credits,
            active=active,
            last_status=status,
            granted_at=granted_at,
        )
        events.append(
            {
                "user_id": user_id,
                "template_id": template_id,
                "template_known": balance.known,
                "kind": balance.kind,
                "source": source,
                "status": status,
                "credit_delta": delta,
                "credits_after": credits,
                "active_after": active,
                "scene": (scenes or {}).get(template_id, scene),
                "page": page,
                "note": note,
                "report_id": report_id,
                "push_id": push_id,
                "delivery_id": None,
                "pairs_with_id": partner[0] if partner is not None else None,
                "occurred_at": when,
                "created_at": utcnow(),
            }
        )
    # One statement for all: answers of one call share a source, so none can be another's partner.
    add_events(session, events)
    return events


def record_settings(
    user: WechatUser, main_switch: bool, item_settings: Mapping[str, str], session: AnySession | None = None
) -> WechatUser:
    """Keep what ``wx.getSetting({withSubscriptions: true})`` said. Credits do not change: a turned-off
    template reaches the ledger as WeChat's change event, and a send to it as 43101."""
    user.main_switch = main_switch
    user.item_settings = dict(item_settings)
    user.settings_reported_at = utcnow()
    _session(session).flush()
    return user


def balances_for(user_id: int, session: AnySession | None = None) -> list[GrantBalance]:
    """The user's balances, freshly read (the ledger writes them with SQL, not through the ORM)."""
    return list(
        _session(session).scalars(
            select(GrantBalance)
            .where(GrantBalance.user_id == user_id)
            .order_by(GrantBalance.template_id)
            .execution_options(populate_existing=True)
        )
    )


def balance_json(balance: GrantBalance) -> dict[str, Any]:
    """One entry of the API's ``grants`` list."""
    return {
        "template_id": balance.template_id,
        "kind": balance.kind,
        "credits": balance.credits,
        "active": balance.active if balance.kind == LONG_TERM else balance.credits > 0,
        "known": balance.template_known,
    }


def live_condition():
    """SQL condition: the balance allows a send now (one-time credits left, or long-term active)."""
    return or_(
        and_(GrantBalance.kind == LONG_TERM, GrantBalance.active.is_(True)),
        and_(GrantBalance.kind != LONG_TERM, GrantBalance.credits > 0),
    )


def has_live_grant(
    user_id: int, template_id: str, *, keep: int = 0, session: AnySession | None = None
) -> bool:
    """Whether a send of ``template_id`` to the user may go ahead (``keep``: credits it must leave)."""
    row = (
        _session(session)
        .execute(
            select(GrantBalance.kind, GrantBalance.credits, GrantBalance.active).where(
                GrantBalance.user_id == user_id, GrantBalance.template_id == template_id
            )
        )
        .first()
    )
    if row is None:
        return False
    if row.kind == LONG_TERM:
        return bool(row.active)
    return row.credits > keep


@dataclass(frozen=True)
class LiveGrantFigures:
    users: int
    by_template: list[tuple[str, int]]
    titles: dict[str, str] = field(default_factory=dict)


def live_grant_figures(top: int = 5, session: AnySession | None = None) -> LiveGrantFigures:
    """Users holding at least one live grant, and the templates with the most such users."""
    session = _session(session)
    users = session.scalar(select(func.count(func.distinct(GrantBalance.user_id))).where(live_condition()))
    count = func.count(GrantBalance.user_id)
    rows = session.execute(
        select(GrantBalance.template_id, count)
        .where(live_condition())
        .group_by(GrantBalance.template_id)
        .order_by(count.desc(), GrantBalance.template_id)
        .limit(top)
    ).all()
    titles = {
        tid: info.title for tid, info in lookup_templates(session, [r[0] for r in rows]).items() if info.title
    }
    return LiveGrantFigures(users=users or 0, by_template=[(row[0], row[1]) for row in rows], titles=titles)


@dataclass
class FunnelRow:
    """One template's funnel: prompts answered → accept/reject/ban/filter → credits granted and spent."""

    template_id: str
    kind: str = ONE_TIME
    known: bool = False
    title: str = ""
    answered: int = 0
    accept: int = 0
    reject: int = 0
    ban: int = 0
    filter: int = 0
    credited: int = 0
    spent: int = 0
    withdrawn: int = 0
    live_users: int = 0

    def share(self, count: int) -> int:
        """``count`` as a whole percentage of the prompts answered."""
        return round(100 * count / self.answered) if self.answered else 0


def funnel(
    since: datetime | None = None, template_id: str | None = None, session: AnySession | None = None
) -> list[FunnelRow]:
    """Per template. A prompt reported by both the client and the popup event is counted once (the
    second of a pair is left out); ``spent`` counts sends that used a credit (spent minus released is
    not needed: a released credit never reaches ``spent``)."""
    session = _session(session)
    conditions = []
    if since is not None:
        conditions.append(GrantEvent.occurred_at >= since)
    if template_id:
        conditions.append(GrantEvent.template_id == template_id)
    rows: dict[str, FunnelRow] = {}

    def row_for(tid: str) -> FunnelRow:
        return rows.setdefault(tid, FunnelRow(template_id=tid))

    answered = session.execute(
        select(GrantEvent.template_id, GrantEvent.status, func.count(), func.sum(GrantEvent.credit_delta))
        .where(
            GrantEvent.source.in_(PAIRED_SOURCES),
            GrantEvent.pairs_with_id.is_(None),
            *conditions,
        )
        .group_by(GrantEvent.template_id, GrantEvent.status)
    ).all()
    for tid, status, count, _ in answered:
        row = row_for(tid)
        row.answered += count
        bucket = "accept" if status in ACCEPT_STATUSES else status
        if bucket in ("accept", "reject", "ban", "filter"):
            setattr(row, bucket, getattr(row, bucket) + count)
    others = session.execute(
        select(
            GrantEvent.template_id,
            GrantEvent.source,
            GrantEvent.status,
            func.count(),
            func.sum(GrantEvent.credit_delta),
        )
        .where(*conditions)
        .group_by(GrantEvent.template_id, GrantEvent.source, GrantEvent.status)
    ).all()
    for tid, source, status, count, delta in others:
        row = row_for(tid)
        if source in PAIRED_SOURCES and (delta or 0) > 0:
            row.credited += int(delta)
        if status == LedgerStatus.spent.value:
            row.spent += count
        if source == GrantSource.change_event.value:
            row.withdrawn += count
    live = session.execute(
        select(GrantBalance.template_id, func.count())
        .where(live_condition(), *([GrantBalance.template_id == template_id] if template_id else []))
        .group_by(GrantBalance.template_id)
    ).all()
    for tid, count in live:
        row_for(tid).live_users = count
    kinds = session.execute(
        select(GrantBalance.template_id, GrantBalance.kind, GrantBalance.template_known)
        .where(GrantBalance.template_id.in_(list(rows)))
        .distinct()
    ).all()
    for tid, kind, known in kinds:
        rows[tid].kind = kind
        rows[tid].known = rows[tid].known or bool(known)
    for tid, info in lookup_templates(session, rows).items():
        if info.known:
            rows[tid].kind, rows[tid].known, rows[tid].title = info.kind, True, info.title
    return sorted(rows.values(), key=lambda row: (-row.answered, row.template_id))
