"""Claim due deliveries and reserve their credits, in one transaction, before any call to WeChat."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..bulk_writes import BulkWrite
from ..models import Delivery, DeliveryState, DispatchState, utcnow
from ..models.dispatch import DISPATCH_STATE_ID
from .ledger import CreditLedger, Reservation
from .transactions import write_transaction

DEFAULT_LEASE_SECONDS = 120
DEFAULT_RATE = 500  # messages per second across all workers, until an admin sets another
DUE_STATES = (DeliveryState.pending, DeliveryState.retry_wait)

_MARK_SKIPPED = BulkWrite(
    sa.update(Delivery.__table__)
    .where(Delivery.__table__.c.id == sa.bindparam("b_id"))
    .values(state=sa.bindparam("b_state"), reason=sa.bindparam("b_reason"), updated_at=sa.bindparam("b_now"))
)


@dataclass(frozen=True)
class Claim:
    """A row this worker now owns for one attempt; results are written only with this ``attempt``."""

    id: int
    attempt: int
    openid: str
    template_id: str
    data: dict[str, Any]
    page: str | None
    miniprogram_state: str
    lang: str


@dataclass(frozen=True)
class ClaimBatch:
    claims: list[Claim]
    skipped: int = 0
    rate_limited: bool = False
    paused_until: datetime | None = None


def load_dispatch_state(session: Session, lock: bool = False) -> DispatchState:
    query = sa.select(DispatchState).where(DispatchState.id == DISPATCH_STATE_ID)
    if lock:
        query = query.with_for_update()
    state = session.scalar(query)
    if state is None:
        # A full bucket to start: the first claim on a fresh database need not wait a second.
        state = DispatchState(
            id=DISPATCH_STATE_ID, rate_per_second=DEFAULT_RATE, tokens=float(DEFAULT_RATE), tokens_at=utcnow()
        )
        session.add(state)
        session.flush()
    return state


def take_tokens(state: DispatchState, wanted: int, now: datetime) -> int:
    """Refill the shared bucket (at most one second's worth) and take up to ``wanted`` whole tokens."""
    elapsed = max((now - state.tokens_at).total_seconds(), 0.0)
    capacity = float(state.rate_per_second)
    state.tokens = min(capacity, state.tokens + elapsed * state.rate_per_second)
    state.tokens_at = now
    taken = min(wanted, math.floor(state.tokens))
    state.tokens -= taken
    return taken


def claim_due(
    engine: sa.Engine,
    ledger: CreditLedger,
    limit: int,
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    now: datetime | None = None,
) -> ClaimBatch:
    """Claim up to ``limit`` due rows, at most one per openid and none for an openid already in flight.

    Rows whose credit cannot be reserved become ``skipped`` with the ledger's reason.
    """
    now = now or utcnow()
    t = Delivery.__table__.c
    with write_transaction(engine) as session:
        state = load_dispatch_state(session, lock=True)
        if state.paused_until is not None and state.paused_until > now:
            return ClaimBatch([], paused_until=state.paused_until)
        budget = take_tokens(state, limit, now)
        if budget == 0:
            return ClaimBatch([], rate_limited=True)
        in_flight = sa.select(t.openid).where(t.state == DeliveryState.sending.value)
        columns = (
            t.id,
            t.attempts,
            t.openid,
            t.template_id,
            t.data,
            t.page,
            t.miniprogram_state,
            t.lang,
            t.user_id,
            t.source,
        )

        def due(*conditions):
            return (
                sa.select(*columns)
                .where(*conditions, t.openid.not_in(in_flight))
                .order_by(t.id)
                .limit(budget + budget // 4 + 1)  # a few may share an openid; those wait a round
                .with_for_update(skip_locked=True, of=Delivery.__table__)
            )

        # Two queries, each walking an index in order (state, id) / (state, not_before), rather than one
        # over both states that would sort every pending row of a big campaign at every claim.
        candidates = list(session.execute(due(t.state == DeliveryState.pending.value)))
        candidates += session.execute(
            due(
                t.state == DeliveryState.retry_wait.value, sa.or_(t.not_before.is_(None), t.not_before <= now)
            )
        )
        candidates.sort(key=lambda row: row.id)
        rows, seen = [], set()
        for row in candidates:
            if row.openid not in seen:
                seen.add(row.openid)
                rows.append(row)
                if len(rows) == budget:
                    break
        state.tokens += budget - len(rows)  # give back what we could not use
        if not rows:
            return ClaimBatch([])
        verdicts = ledger.reserve(
            session,
            [Reservation(r.id, r.user_id, r.openid, r.template_id, str(r.source), r.attempts) for r in rows],
        )
        lease_until = now + timedelta(seconds=lease_seconds)
        claims, skipped = [], []
        for row in rows:
            reason = verdicts.get(row.id)
            if reason:
                skipped.append(
                    {"b_id": row.id, "b_state": DeliveryState.skipped, "b_reason": reason, "b_now": now}
                )
            else:
                claims.append(
                    Claim(
                        row.id,
                        row.attempts + 1,
                        row.openid,
                        row.template_id,
                        row.data,
                        row.page,
                        row.miniprogram_state,
                        row.lang,
                    )
                )
        if claims:
            # One statement for the batch: the rows are locked, so attempts + 1 is each claim's attempt.
            session.execute(
                sa.update(Delivery.__table__)
                .where(t.id.in_([c.id for c in claims]))
                .values(
                    state=DeliveryState.sending.value,
                    attempts=t.attempts + 1,
                    lease_until=lease_until,
                    updated_at=now,
                )
            )
        _MARK_SKIPPED.execute(session, skipped)
        return ClaimBatch(claims, skipped=len(skipped))
