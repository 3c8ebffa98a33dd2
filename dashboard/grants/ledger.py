"""The ledger's contract with the dispatch engine: reserve a credit before calling WeChat, settle after.

A send of a one-time template goes through two steps, each inside the engine's own transaction:

1. ``reserve_credit`` — in the transaction that claims the delivery, before the call. Takes one credit
   (appends ``reserved``, −1) if the user holds more than ``keep``; a long-term grant is checked, not
   spent. Returns whether the send may go ahead.
2. After WeChat answered, in the transaction that records the answer, exactly one of:

   * ``spend_credit`` — errcode 0, or an unknown outcome (the request left, the answer was lost): the
     reserved credit is used. The ``reserved`` event itself becomes ``spent`` (still −1: one row per
     send). Called without a reservation it takes one itself (appends ``spent``, −1).
   * ``release_credit`` — a failure that did not use the credit (47003, 40003, -1, 43108, 45009, …):
     the credit goes back to the balance and the ``reserved`` event becomes ``released`` with a delta
     of 0 and the balance it would have shown without the reservation (one row per released send).
   * ``refund`` (batch ``settle`` only) — an ``unknown`` send, already settled as spent, that WeChat's
     delivery event reports as failed: the credit goes back (appends ``released``, +1) after a ``spent``.
   * ``zero_credits`` — 43101: WeChat says there is no grant, so our balance was wrong: credits go to
     zero and a long-term grant goes inactive (appends ``no_grant``, −what was left).

Spend and release change the reservation's row in place only when it is still the delivery's latest
ledger event (what ``last_statuses`` reads), so ``credits == sum(credit_delta)`` holds at every commit
and a row written before issue 13 (``reserved`` −1 then ``spent`` 0, or ``released`` +1) still reads
right. Every function is idempotent per delivery: it looks at the last ledger event of that delivery
first, so a retried claim never takes a second credit and a repeated settlement changes nothing. A
failed transaction rolls the credit back with everything else. None of them commits.

``GrantLedger`` wraps the same functions in the batch shape of ``dashboard.dispatch.ledger.CreditLedger``:
its settlement is a constant number of statements per batch (the engine's finalize, issue 13).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select, update

from ..models import WechatUser, utcnow
from ..models.grants import GrantBalance, GrantEvent, GrantSource, LedgerStatus
from ..set_writes import MultiRowInsert, is_postgresql, one_of
from .services import LONG_TERM, AnySession, _session, add_events, lock_balance

_INSERT_EVENTS_SET = MultiRowInsert(GrantEvent.__table__)


def _append_events(session: AnySession, events: list[dict[str, Any]]) -> None:
    """A batch's events: one multi-row INSERT on PostgreSQL, ``add_events``' executemany on SQLite."""
    if events and is_postgresql(session):
        _INSERT_EVENTS_SET.execute(session, events)
    else:
        add_events(session, events)


UserRef = WechatUser | int


class ReserveOutcome(enum.StrEnum):
    reserved = "reserved"  # one one-time credit taken for this delivery
    already_reserved = "already_reserved"  # this delivery holds one already (a retried claim)
    long_term = "long_term"  # an active long-term grant: nothing to take
    no_grant = "no_grant"  # no credit, inactive, or a settled delivery: do not send
    budget = "budget"  # credits exist but all are kept for transactional sends


@dataclass(frozen=True)
class ReservationResult:
    """What ``reserve_credit`` decided for one send (``dashboard.dispatch.ledger.ReservationRequest`` asks)."""

    outcome: ReserveOutcome
    credits_left: int | None = None

    @property
    def ok(self) -> bool:
        """True when the send may go ahead."""
        return self.outcome in (
            ReserveOutcome.reserved,
            ReserveOutcome.already_reserved,
            ReserveOutcome.long_term,
        )


def _user_id(user: UserRef) -> int:
    return user if isinstance(user, int) else user.id


def last_statuses(session: AnySession, delivery_ids: Iterable[int]) -> dict[int, str]:
    """The status of each delivery's latest send_result event (absent: the ledger never saw it)."""
    ids = sorted({int(i) for i in delivery_ids})
    if not ids:
        return {}
    rows = session.execute(
        select(GrantEvent.delivery_id, GrantEvent.status)
        .where(
            one_of(GrantEvent.delivery_id, ids, _dialect(session)),
            GrantEvent.source == GrantSource.send_result.value,
        )
        .order_by(GrantEvent.id)
    ).all()
    return {delivery_id: status for delivery_id, status in rows}


def _event(
    user_id: int,
    template_id: str,
    delivery_id: int | None,
    status: str,
    delta: int,
    row: Any,
    note: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "user_id": user_id,
        "template_id": template_id,
        "template_known": bool(row.template_known),
        "kind": row.kind,
        "source": GrantSource.send_result.value,
        "status": str(status),
        "credit_delta": delta,
        "credits_after": row.credits,
        "active_after": bool(row.active),
        "scene": None,
        "page": None,
        "note": note,
        "report_id": None,
        "push_id": None,
        "delivery_id": delivery_id,
        "pairs_with_id": None,
        "occurred_at": now,
        "created_at": now,
    }


_RETURNING = (
    GrantBalance.__table__.c.credits,
    GrantBalance.__table__.c.active,
    GrantBalance.__table__.c.kind,
    GrantBalance.__table__.c.template_known,
)


def _take_one(session: AnySession, user_id: int, template_id: str, keep: int):
    table = GrantBalance.__table__
    return session.execute(
        update(table)
        .where(
            table.c.user_id == user_id,
            table.c.template_id == template_id,
            table.c.kind != LONG_TERM,
            table.c.credits > keep,
        )
        .values(credits=table.c.credits - 1, updated_at=utcnow())
        .returning(*_RETURNING)
    ).first()


def _why_not(session: AnySession, user_id: int, template_id: str, keep: int) -> ReservationResult:
    row = session.execute(
        select(GrantBalance.kind, GrantBalance.credits, GrantBalance.active).where(
            GrantBalance.user_id == user_id, GrantBalance.template_id == template_id
        )
    ).first()
    if row is None:
        return ReservationResult(ReserveOutcome.no_grant, 0)
    if row.kind == LONG_TERM:
        return ReservationResult(ReserveOutcome.long_term if row.active else ReserveOutcome.no_grant)
    if 0 < row.credits <= keep:
        return ReservationResult(ReserveOutcome.budget, row.credits)
    return ReservationResult(ReserveOutcome.no_grant, row.credits)


def _reserve(
    session: AnySession,
    user_id: int,
    template_id: str,
    delivery_id: int,
    keep: int,
    last: str | None,
    events: list[dict[str, Any]],
) -> ReservationResult:
    if last in (LedgerStatus.reserved, LedgerStatus.spent):
        # spent: this delivery already used its credit; a second claim of it must not send again.
        return ReservationResult(
            ReserveOutcome.already_reserved if last == LedgerStatus.reserved else ReserveOutcome.no_grant
        )
    row = _take_one(session, user_id, template_id, max(keep, 0))
    if row is None:
        return _why_not(session, user_id, template_id, max(keep, 0))
    events.append(_event(user_id, template_id, delivery_id, LedgerStatus.reserved, -1, row))
    return ReservationResult(ReserveOutcome.reserved, row.credits)


def reserve_credit(
    user: UserRef, template_id: str, delivery_id: int, *, keep: int = 0, session: AnySession | None = None
) -> ReservationResult:
    """Take one credit of ``template_id`` from ``user`` for ``delivery_id``, before calling WeChat.

    One-time: atomically decrements the balance if it holds more than ``keep`` credits (``keep`` is
    the credit budget only transactional sends may use; pass 0 for them) and appends ``reserved``.
    Long-term: checks the grant is active and writes nothing. A delivery that already holds a
    reservation gets ``already_reserved`` without a second credit being taken.

    :returns: a ``ReservationResult``; send only when ``.ok``. ``no_grant`` and ``budget`` mean skip.
    """
    session = _session(session)
    events: list[dict[str, Any]] = []
    last = last_statuses(session, [delivery_id]).get(delivery_id)
    result = _reserve(session, _user_id(user), template_id, delivery_id, keep, last, events)
    add_events(session, events)
    return result


def _settle_reservations(
    session: AnySession, delivery_ids: Sequence[int], action: str, note: str = ""
) -> set[int]:
    """Turn each delivery's reservation into its settlement, in place; returns the deliveries settled.

    Only a delivery whose latest ledger event is its ``reserved`` row is touched (the same rule as
    ``last_statuses``): ``spend`` makes that row ``spent`` (its −1 stays: the reservation took the
    credit); ``release`` makes it ``released`` with a delta of 0 and gives the credit back to the
    balance. One UPDATE for the batch, plus one per template (and count) for the balances of a release.
    """
    ids = sorted({int(i) for i in delivery_ids})
    if not ids:
        return set()
    events = GrantEvent.__table__
    later = events.alias("later")
    latest = (
        select(func.max(later.c.id))
        .where(later.c.delivery_id == events.c.delivery_id, later.c.source == GrantSource.send_result.value)
        .scalar_subquery()
    )
    conditions = [
        one_of(events.c.delivery_id, ids, _dialect(session)),
        events.c.source == GrantSource.send_result.value,
        events.c.status == LedgerStatus.reserved.value,
        events.c.id == latest,
    ]
    values: dict[str, Any] = {"status": LedgerStatus.spent.value}
    if action == "release":
        values = {
            "status": LedgerStatus.released.value,
            "credit_delta": 0,
            "credits_after": events.c.credits_after + 1,
        }
        # Only while the reservation is its balance's latest event, so the row can show the balance the
        # release leaves; otherwise (another event of that balance came in mid-send) the caller appends
        # a ``released`` +1 after it, as before issue 13.
        conditions.append(
            ~exists().where(
                later.c.user_id == events.c.user_id,
                later.c.template_id == events.c.template_id,
                later.c.id > events.c.id,
            )
        )
    if note:
        values["note"] = note
    settled = session.execute(
        update(events)
        .where(*conditions)
        .values(**values)
        .returning(events.c.delivery_id, events.c.user_id, events.c.template_id)
    ).all()
    if action == "release" and settled:
        counts: dict[tuple[int, str], int] = {}
        for row in settled:
            counts[(row.user_id, row.template_id)] = counts.get((row.user_id, row.template_id), 0) + 1
        groups: dict[tuple[str, int], list[int]] = {}
        for (user_id, template_id), count in counts.items():
            groups.setdefault((template_id, count), []).append(user_id)
        table = GrantBalance.__table__
        now = utcnow()
        for (template_id, count), user_ids in groups.items():
            session.execute(
                update(table)
                .where(*_balances_of(session, sorted(user_ids), template_id))
                .values(credits=table.c.credits + count, updated_at=now)
            )
    return {row.delivery_id for row in settled}


def _settle(
    session: AnySession,
    action: str,
    user_id: int,
    template_id: str,
    delivery_id: int | None,
    last: str | None,
    events: list[dict[str, Any]],
    note: str = "",
) -> bool:
    table = GrantBalance.__table__
    if action in ("spend", "release") and last == LedgerStatus.reserved and delivery_id is not None:
        if _settle_reservations(session, [delivery_id], action, note):
            return True
    if action == "spend":
        if last == LedgerStatus.reserved:  # not settled in place (a race): ``spent`` 0 after it, as before
            row = session.execute(
                select(*_RETURNING).where(table.c.user_id == user_id, table.c.template_id == template_id)
            ).one()
            events.append(_event(user_id, template_id, delivery_id, LedgerStatus.spent, 0, row, note))
            return True
        if last == LedgerStatus.spent:
            return True
        if last == LedgerStatus.no_grant:
            return False
        row = _take_one(session, user_id, template_id, 0)
        if row is not None:
            events.append(_event(user_id, template_id, delivery_id, LedgerStatus.spent, -1, row, note))
            return True
        return _why_not(session, user_id, template_id, 0).outcome == ReserveOutcome.long_term
    if action in ("release", "refund"):
        # release: the reservation could not be settled in place (another event of the balance came
        # after it), so ``released`` +1 is appended. refund: an unknown outcome counted the credit as
        # spent, and WeChat's delivery event (subscribe_msg_sent_event) later said the message failed:
        # the spent credit goes back, once.
        if last != (LedgerStatus.reserved if action == "release" else LedgerStatus.spent):
            return False
        row = session.execute(
            update(table)
            .where(table.c.user_id == user_id, table.c.template_id == template_id)
            .values(credits=table.c.credits + 1, updated_at=utcnow())
            .returning(*_RETURNING)
        ).one()
        events.append(_event(user_id, template_id, delivery_id, LedgerStatus.released, 1, row, note))
        return True
    if action == "zero":
        if last == LedgerStatus.no_grant:
            return False
        locked = lock_balance(session, user_id, template_id)
        row = session.execute(
            update(table)
            .where(table.c.user_id == user_id, table.c.template_id == template_id)
            .values(credits=0, active=False, last_status=LedgerStatus.no_grant.value, updated_at=utcnow())
            .returning(*_RETURNING)
        ).one()
        events.append(
            _event(
                user_id,
                template_id,
                delivery_id,
                LedgerStatus.no_grant,
                -locked.credits,
                row,
                note or "43101",
            )
        )
        return True
    raise ValueError(f"unknown ledger action {action!r}")


def _settle_one(
    action: str,
    user: UserRef,
    template_id: str,
    delivery_id: int | None,
    note: str,
    session: AnySession | None,
) -> bool:
    session = _session(session)
    events: list[dict[str, Any]] = []
    last = last_statuses(session, [delivery_id]).get(delivery_id) if delivery_id is not None else None
    done = _settle(session, action, _user_id(user), template_id, delivery_id, last, events, note)
    add_events(session, events)
    return done


def spend_credit(
    user: UserRef, template_id: str, delivery_id: int, *, note: str = "", session: AnySession | None = None
) -> bool:
    """The send succeeded (errcode 0) or its outcome is unknown: the delivery's credit is used.

    Appends ``spent`` after a reservation (no balance change: the reservation took it). Without one it
    takes a credit now (``spent``, −1). Repeating it changes nothing. Long-term grants write nothing.

    :returns: False when there was no credit to spend (the send should not have happened).
    """
    return _settle_one("spend", user, template_id, delivery_id, note, session)


def release_credit(
    user: UserRef, template_id: str, delivery_id: int, *, note: str = "", session: AnySession | None = None
) -> bool:
    """The send failed without using the credit: give the reserved credit back (``released``, +1).

    Only a delivery whose last ledger event is ``reserved`` gets anything back, so a repeated or late
    release can never create a credit. :returns: whether a credit went back.
    """
    return _settle_one("release", user, template_id, delivery_id, note, session)


def zero_credits(
    user: UserRef,
    template_id: str,
    delivery_id: int | None = None,
    *,
    note: str = "43101",
    session: AnySession | None = None,
) -> bool:
    """WeChat answered 43101 (no subscription): the user holds nothing for this template.

    Sets one-time credits to 0 and a long-term grant inactive, appending ``no_grant`` with the credits
    removed. A credit reserved for ``delivery_id`` is not given back (WeChat had none to give).
    Repeating it for the same delivery changes nothing. :returns: False for such a repeat.
    """
    return _settle_one("zero", user, template_id, delivery_id, note, session)


def _users_by_template(pairs: Iterable[tuple[int, str]]) -> list[tuple[str, list[int]]]:
    grouped: dict[str, set[int]] = {}
    for user_id, template_id in pairs:
        grouped.setdefault(template_id, set()).add(user_id)
    return [(template_id, sorted(user_ids)) for template_id, user_ids in grouped.items()]


def _dialect(session: AnySession) -> str:
    return session.get_bind().dialect.name


def _balances_of(session: AnySession, user_ids: list[int], template_id: str) -> tuple[Any, ...]:
    """The balances of these users for one template, as conditions that use the (user, template) key.

    A row-value ``(user_id, template_id) IN (...)`` reads the whole table on SQLite (measured: the
    claim's cost grew with the number of balances); one template at a time walks the unique index.
    """
    table = GrantBalance.__table__
    return (table.c.template_id == template_id, one_of(table.c.user_id, user_ids, _dialect(session)))


class GrantLedger:
    """``dashboard.dispatch.ledger.CreditLedger`` over this ledger, for batches of deliveries.

    Rows are duck-typed: ``reserve`` reads ``delivery_id``, ``user_id`` (or ``openid`` when None),
    ``template_id`` and ``source``; ``settle`` reads the same plus ``action`` (``spend`` / ``release`` /
    ``zero``). ``keep_for(template_id, source)`` gives the credits a send of that source must leave
    (the credit budget); by default none.
    """

    def __init__(self, keep_for: Callable[[str, str], int] | None = None) -> None:
        self.keep_for = keep_for or (lambda template_id, source: 0)

    @staticmethod
    def _user_ids(session: AnySession, rows: Sequence[Any]) -> dict[str, int]:
        openids = {row.openid for row in rows if getattr(row, "user_id", None) is None and row.openid}
        if not openids:
            return {}
        found = session.execute(
            select(WechatUser.openid, WechatUser.id).where(WechatUser.openid.in_(openids))
        )
        return {openid: user_id for openid, user_id in found}

    def reserve(self, session: AnySession, rows: Sequence[Any]) -> dict[int, str | None]:
        """Per delivery id: None when it may be sent, else the skip reason (``no_grant``, ``budget``).

        The common case (a first claim, each user once in the batch) takes all one-time credits with one
        ``UPDATE … RETURNING`` per budget value; anything else goes through the per-row path.
        """
        by_openid = self._user_ids(session, rows)
        # A delivery never claimed before (``attempts == 0``) cannot have ledger events yet.
        last = last_statuses(
            session, [row.delivery_id for row in rows if getattr(row, "attempts", None) != 0]
        )
        now = utcnow()
        events: list[dict[str, Any]] = []
        answer: dict[int, str | None] = {}
        batched: dict[int, list[tuple[Any, int]]] = {}  # keep -> [(row, user_id)]
        seen: set[tuple[int, str]] = set()
        single: list[tuple[Any, int, int]] = []
        for row in rows:
            user_id = row.user_id if row.user_id is not None else by_openid.get(row.openid)
            if user_id is None:
                answer[row.delivery_id] = ReserveOutcome.no_grant.value
                continue
            keep = max(int(self.keep_for(row.template_id, str(getattr(row, "source", ""))) or 0), 0)
            pair = (user_id, row.template_id)
            if last.get(row.delivery_id) is None and pair not in seen:
                seen.add(pair)
                batched.setdefault(keep, []).append((row, user_id))
            else:
                single.append((row, user_id, keep))
        table = GrantBalance.__table__
        for keep, group in batched.items():
            taken = {}
            for template_id, user_ids in _users_by_template(
                (user_id, row.template_id) for row, user_id in group
            ):
                for found in session.execute(
                    update(table)
                    .where(
                        *_balances_of(session, user_ids, template_id),
                        table.c.kind != LONG_TERM,
                        table.c.credits > keep,
                    )
                    .values(credits=table.c.credits - 1, updated_at=now)
                    .returning(table.c.user_id, table.c.template_id, *_RETURNING)
                ):
                    taken[(found.user_id, found.template_id)] = found
            for row, user_id in group:
                found = taken.get((user_id, row.template_id))
                if found is not None:
                    events.append(
                        _event(
                            user_id,
                            row.template_id,
                            row.delivery_id,
                            LedgerStatus.reserved,
                            -1,
                            found,
                            now=now,
                        )
                    )
                    answer[row.delivery_id] = None
                else:
                    result = _why_not(session, user_id, row.template_id, keep)
                    answer[row.delivery_id] = None if result.ok else result.outcome.value
        for row, user_id, keep in single:
            result = _reserve(
                session, user_id, row.template_id, row.delivery_id, keep, last.get(row.delivery_id), events
            )
            answer[row.delivery_id] = None if result.ok else result.outcome.value
        _append_events(session, events)
        return answer

    def settle(self, session: AnySession, settlements: Sequence[Any]) -> None:
        """Spend, release, refund or zero what each delivery reserved (idempotent per delivery).

        The common case, a reservation spent or released, is settled in place with one UPDATE per
        action for the whole batch (``_settle_reservations``); a spend without a reservation (a
        long-term grant: nothing to write) takes its credits with one UPDATE per template; refunds and
        43101 go through the per-row path. The number of statements does not grow with the batch.
        """
        if not settlements:
            return
        actions = [(row, str(getattr(row.action, "value", row.action))) for row in settlements]
        done: set[int] = set()
        for action in ("spend", "release"):
            ids = [row.delivery_id for row, name in actions if name == action]
            if ids:
                done |= _settle_reservations(session, ids, action)
        rest = [(row, name) for row, name in actions if row.delivery_id not in done]
        if not rest:
            return
        by_openid = self._user_ids(session, [row for row, _ in rest])
        last = last_statuses(session, [row.delivery_id for row, _ in rest])
        now = utcnow()
        events: list[dict[str, Any]] = []
        unreserved: list[tuple[Any, int]] = []
        seen: set[tuple[int, str]] = set()
        others: list[tuple[Any, int, str]] = []
        for row, action in rest:
            user_id = row.user_id if row.user_id is not None else by_openid.get(row.openid)
            if user_id is None:
                continue
            pair = (user_id, row.template_id)
            if action == "spend" and last.get(row.delivery_id) is None and pair not in seen:
                seen.add(pair)
                unreserved.append((row, user_id))
            else:
                others.append((row, user_id, action))
        if unreserved:
            # Spent without a reservation: take the credit now (none for a long-term grant, which
            # writes nothing, nor when there is none left: the send should not have happened).
            table = GrantBalance.__table__
            taken = {}
            for template_id, user_ids in _users_by_template(
                (user_id, row.template_id) for row, user_id in unreserved
            ):
                for found in session.execute(
                    update(table)
                    .where(
                        *_balances_of(session, user_ids, template_id),
                        table.c.kind != LONG_TERM,
                        table.c.credits > 0,
                    )
                    .values(credits=table.c.credits - 1, updated_at=now)
                    .returning(table.c.user_id, table.c.template_id, *_RETURNING)
                ):
                    taken[(found.user_id, found.template_id)] = found
            for row, user_id in unreserved:
                found = taken.get((user_id, row.template_id))
                if found is not None:
                    events.append(
                        _event(
                            user_id, row.template_id, row.delivery_id, LedgerStatus.spent, -1, found, now=now
                        )
                    )
                    last[row.delivery_id] = LedgerStatus.spent.value
        for row, user_id, action in others:
            _settle(
                session, action, user_id, row.template_id, row.delivery_id, last.get(row.delivery_id), events
            )
            if events and events[-1]["delivery_id"] == row.delivery_id:
                last[row.delivery_id] = events[-1]["status"]
        _append_events(session, events)
