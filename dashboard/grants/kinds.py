"""Which kind a template is (one-time or long-term), and what a change of kind does to the balances.

The catalog (``dashboard.models.catalog.MessageTemplate``) is the authority. Until it knows a template,
the ledger treats it as one-time and flags it unknown: an unknown template's accepts are still recorded
and credited, never dropped, so nothing is lost while an operator registers it.

When the catalog's kind of a template changes (a sync finds WeChat's ``type`` changed, or a template the
ledger knew as unknown one-time is registered as long-term), :func:`convert_balances` converts every
balance of it, each with a ``catalog``/``kind_changed`` ledger event, so balances keep equalling their
events (docs/wechat-rules.md, "Grants"):

* one-time → long-term: the grant is active when the user's last answer was an accept; one-time credits
  do not carry over (a long-term grant has none), so they end, and the event says how many;
* long-term → one-time: the active grant ends, with 0 credits: a long-term accept never counted sends.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, scoped_session

from ..models import utcnow
from ..models.grants import ACCEPT_STATUSES, GrantBalance, GrantSource, LedgerStatus, TemplateKindName
from .events import add_events


@dataclass(frozen=True)
class TemplateInfo:
    kind: str  # a TemplateKindName value
    known: bool
    title: str = ""


UNKNOWN = TemplateInfo(kind=TemplateKindName.one_time.value, known=False)


@functools.cache
def _catalog_model():
    """The catalog's model, or None while it is not part of this build (asked once per process: every
    grant report asks)."""
    try:
        from ..models.catalog import MessageTemplate
    except ImportError:
        return None
    if not all(hasattr(MessageTemplate, name) for name in ("template_id", "kind", "title")):
        return None
    return MessageTemplate


@functools.cache
def _catalog_statement(model: Any, count: int):
    """The catalog rows of ``count`` template ids, with one named parameter each. Built once per count:
    an expanding ``IN`` is compiled again at every execution, which cost more than the query (issue 13)."""
    return select(model.template_id, model.kind, model.title).where(
        model.template_id.in_([sa.bindparam(f"t{n}") for n in range(count)])
    )


def lookup_templates(
    session: Session | scoped_session, template_ids: Iterable[str]
) -> dict[str, TemplateInfo]:
    """``TemplateInfo`` for each of ``template_ids`` (``UNKNOWN`` for those the catalog does not know)."""
    wanted = sorted(set(template_ids))
    found = dict.fromkeys(wanted, UNKNOWN)
    model = _catalog_model()
    if model is None or not wanted:
        return found
    rows = session.execute(
        _catalog_statement(model, len(wanted)), {f"t{n}": template_id for n, template_id in enumerate(wanted)}
    ).all()
    for template_id, kind, title in rows:
        found[template_id] = known_template(kind, title)
    return found


def known_template(kind: Any, title: str | None = "") -> TemplateInfo:
    """The ``TemplateInfo`` of a catalog row, from its ``kind`` column (an enum member or its value)."""
    value = getattr(kind, "value", kind)
    kind_name = (
        TemplateKindName.long_term.value
        if str(value) == TemplateKindName.long_term.value
        else TemplateKindName.one_time.value
    )
    return TemplateInfo(kind=kind_name, known=True, title=title or "")


def catalog_kind(template_id: sa.BindParameter) -> sa.ScalarSelect | None:
    """The catalog's kind of one template, as a scalar subquery (NULL when the catalog does not know it);
    None while the catalog is not part of this build."""
    model = _catalog_model()
    if model is None:
        return None
    return select(model.kind).where(model.template_id == template_id).scalar_subquery()


def template_info(session: Session | scoped_session, template_id: str) -> TemplateInfo:
    return lookup_templates(session, [template_id])[template_id]


#: Balances converted per statement: keeps the ``user_id IN (...)`` list under SQLite's variable limit.
_CHUNK = 500


@dataclass(frozen=True)
class ConvertedBalance:
    user_id: int
    credits_before: int
    active_after: bool


def convert_balances(
    session: Session | scoped_session,
    template_id: str,
    kind: str,
    *,
    reason: str,
    user_ids: Sequence[int] | None = None,
) -> list[ConvertedBalance]:
    """Convert the balances of ``template_id`` that are not of ``kind`` (all, or those of ``user_ids``).

    The one place a balance changes kind. Each converted balance ends with 0 credits, is active only
    when it becomes long-term and its last answer was an accept, is marked known, and gets one ledger
    event (source ``catalog``, status ``kind_changed``, note ``"<old>→<new>: <reason>"``, the credits
    it lost as ``credit_delta``). Balances already of ``kind`` are only marked known. Idempotent;
    adds to the caller's transaction and does not commit.

    :returns: what was converted, per user.
    """
    kind = TemplateKindName(kind).value
    table = GrantBalance.__table__
    now = utcnow()
    scope = [table.c.template_id == template_id]
    if user_ids is not None:
        scope.append(table.c.user_id.in_(sorted(set(user_ids))))
    # A write first, so the rows are locked (PostgreSQL) or the write lock taken (SQLite) before they
    # are read: the values the events record are the ones replaced.
    locked = session.execute(
        update(table)
        .where(*scope, table.c.kind != kind)
        .values(updated_at=now)
        .returning(table.c.user_id, table.c.kind, table.c.credits, table.c.last_status)
    ).all()
    session.execute(
        # updated_at too: every write of a balance sets it (a report planned before this one compares it).
        update(table)
        .where(*scope, table.c.template_known.is_(False))
        .values(template_known=True, updated_at=now)
    )
    if not locked:
        return []
    locked = sorted(locked, key=lambda row: row.user_id)
    to_long_term = kind == TemplateKindName.long_term.value
    # last_status is the user's last answer (or no_grant after a 43101, which is not an accept).
    active = case((table.c.last_status.in_(ACCEPT_STATUSES), True), else_=False) if to_long_term else False
    for start in range(0, len(locked), _CHUNK):
        chunk = [row.user_id for row in locked[start : start + _CHUNK]]
        session.execute(
            update(table)
            .where(table.c.template_id == template_id, table.c.user_id.in_(chunk))
            .values(kind=kind, credits=0, active=active, updated_at=now)
        )
    converted = [
        ConvertedBalance(
            user_id=row.user_id,
            credits_before=row.credits,
            active_after=to_long_term and row.last_status in ACCEPT_STATUSES,
        )
        for row in locked
    ]
    old_kind = {row.user_id: row.kind for row in locked}
    add_events(
        session,
        [
            {
                "user_id": balance.user_id,
                "template_id": template_id,
                "template_known": True,
                "kind": kind,
                "source": GrantSource.catalog.value,
                "status": LedgerStatus.kind_changed.value,
                "credit_delta": -balance.credits_before,
                "credits_after": 0,
                "active_after": balance.active_after,
                "scene": None,
                "page": None,
                "note": f"{old_kind[balance.user_id]}→{kind}: {reason}"[:120],
                "report_id": None,
                "push_id": None,
                "delivery_id": None,
                "pairs_with_id": None,
                "occurred_at": now,
                "created_at": now,
            }
            for balance in converted
        ],
    )
    return converted
