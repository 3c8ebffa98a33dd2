"""Claim due deliveries and reserve their credits, in one transaction, before any call to WeChat."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..bulk_writes import BulkWrite
from ..models import Channel, Delivery, DeliveryState, DispatchState, utcnow
from ..models.dispatch import DISPATCH_STATE_ID
from ..set_writes import one_of, unnest
from .campaign_gate import load_gate, not_held
from .credits import Route, RouteRequest, mark_skipped, route
from .frequency_cap import REASON as FREQUENCY_CAP
from .frequency_cap import Verdict, count_window
from .ledger import CreditLedger
from .write_lock import write_transaction

DEFAULT_LEASE_SECONDS = 120
DEFAULT_RATE = 500  # messages per second across all workers, until an admin sets another
DUE_STATES = (DeliveryState.pending, DeliveryState.retry_wait)


@dataclass(frozen=True)
class Claim:
    """A row this worker now owns for one attempt; results are written only with this ``attempt``.

    ``channel_used`` says which message goes out: the subscribe message (``openid``, ``template_id``,
    ``data``, ``page``…) or the Official Account's template message (to ``oa_openid``, with
    ``oa_template_id``, ``oa_data``, and ``oa_pagepath`` or else ``page`` for the mini-program it opens).
    """

    id: int
    attempt: int
    openid: str
    template_id: str
    data: dict[str, Any]
    page: str | None
    miniprogram_state: str
    lang: str
    channel_used: Channel = Channel.mp_subscribe
    oa_openid: str | None = None
    oa_template_id: str | None = None
    oa_data: dict[str, Any] | None = None
    oa_pagepath: str | None = None
    # Asked ``mp_subscribe_or_oa`` and going as a subscribe message: if WeChat says the user holds no
    # subscription after all (43101), the row tries the Official Account next (``outcomes.decide``).
    falls_back: bool = False

    @property
    def via_oa(self) -> bool:
        return self.channel_used is Channel.oa_template


@dataclass(frozen=True)
class ClaimBatch:
    claims: list[Claim]
    skipped: int = 0
    rate_limited: bool = False
    paused_until: datetime | None = None


def load_dispatch_state(session: Session, lock: bool = False) -> DispatchState:
    """The shared row (migration 0010 creates it); if it is missing, create it without racing.

    Two workers starting on an empty table would both find no row: the insert ignores a conflict on
    the key, and both read the row that won.
    """
    query = sa.select(DispatchState).where(DispatchState.id == DISPATCH_STATE_ID)
    if lock:
        query = query.with_for_update()
    state = session.scalar(query)
    if state is None:
        now = utcnow()
        # A full bucket to start: the first claim on a fresh database need not wait a second.
        session.execute(
            _insert_ignoring_conflict(session, DispatchState.__table__)
            .values(
                id=DISPATCH_STATE_ID,
                rate_per_second=DEFAULT_RATE,
                tokens=float(DEFAULT_RATE),
                tokens_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        state = session.scalar(query)
    return state


def _insert_ignoring_conflict(session: Session, table: sa.Table):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


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
    *,
    start: bool = True,
) -> ClaimBatch:
    """Claim up to ``limit`` due rows, at most one per openid and none for an openid already in flight.

    Campaign rows of a user at the frequency cap become ``skipped`` with ``frequency_cap`` before any
    credit is asked for (``frequency_cap``); rows whose credit cannot be reserved, ``skipped`` with the
    ledger's reason. ``start``: the claimed rows go out as soon as this commits, so the claim also
    records their start; without it they are claimed ahead and must go through ``start_claims`` before
    any byte of them leaves.
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
        # Rows of campaigns paused, cancelled or in quiet hours are held; some campaigns have their own rate.
        gate = load_gate(session, now)
        runnable = not_held(t.campaign_id, gate)
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
            t.campaign_id,
            t.channel,
            t.oa_openid,
            t.oa_template_id,
            t.oa_data,
            t.oa_pagepath,
        )

        def due(*conditions):
            return (
                sa.select(*columns)
                .where(*conditions, runnable, t.openid.not_in(in_flight))
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
        # The frequency cap: one count for the candidates' users, before any credit is reserved.
        cap = count_window(session, state, candidates, now)
        rows, seen, capped = [], set(), {}
        for row in candidates:
            if row.openid in seen:
                continue
            verdict = cap.verdict(row) if cap is not None else Verdict.send
            if verdict == Verdict.capped:
                capped[row.id] = FREQUENCY_CAP  # no token, no campaign rate, no credit: it is not sent
                continue
            if verdict == Verdict.wait:
                continue
            if gate.admits(row.campaign_id):
                seen.add(row.openid)
                rows.append(row)
                if cap is not None:
                    cap.take(row)
                if len(rows) == budget:
                    break
        state.tokens += budget - len(rows)  # give back what we could not use
        gate.spend(session, now)
        mark_skipped(session, capped, now)
        if not rows:
            return ClaimBatch([], skipped=len(capped), rate_limited=gate.rate_held)
        # Each row's channel: a credit reserved, or the Official Account for a follower; the rest are
        # skipped here with the choice's reason, the same way a test send is (``credits.route``).
        routes, skipped = route(
            session,
            ledger,
            [
                RouteRequest(
                    r.id,
                    r.user_id,
                    r.openid,
                    r.template_id,
                    str(r.source),
                    r.attempts,
                    r.channel,
                    r.oa_openid,
                    r.oa_template_id,
                )
                for r in rows
            ],
            now,
        )
        lease_until = now + timedelta(seconds=lease_seconds)
        claims = [claim_for(row, row.attempts + 1, routes[row.id]) for row in rows if row.id in routes]
        if claims:
            _mark_claimed(session, claims, lease_until, now if start else None, now)
        return ClaimBatch(claims, skipped=len(skipped) + len(capped))


def claim_for(row: Any, attempt: int, chosen: Route) -> Claim:
    """The claim for ``row`` (a claimed row, or a ``Delivery``) going out as attempt ``attempt`` on its
    chosen route."""
    via_oa = chosen.channel is Channel.oa_template
    return Claim(
        row.id,
        attempt,
        row.openid,
        row.template_id,
        dict(row.data or {}),
        row.page,
        row.miniprogram_state,
        row.lang,
        channel_used=chosen.channel,
        oa_openid=chosen.oa_openid if via_oa else None,
        oa_template_id=row.oa_template_id if via_oa else None,
        oa_data=dict(row.oa_data or {}) if via_oa else None,
        oa_pagepath=row.oa_pagepath if via_oa else None,
        falls_back=not via_oa and Channel(row.channel or Channel.mp_subscribe) is Channel.mp_subscribe_or_oa,
    )


_CLAIM_ROWS = BulkWrite(
    sa.update(Delivery.__table__)
    .where(Delivery.__table__.c.id == sa.bindparam("b_id"))
    .values(
        state=sa.literal_column(f"'{DeliveryState.sending.value}'"),
        attempts=Delivery.__table__.c.attempts + sa.literal_column("1"),
        lease_until=sa.bindparam("b_lease_until"),
        attempt_started_at=sa.bindparam("b_started_at"),
        updated_at=sa.bindparam("b_now"),
        channel_used=sa.bindparam("b_channel_used"),
        oa_openid=sa.func.coalesce(
            sa.bindparam("b_oa_openid", type_=sa.String), Delivery.__table__.c.oa_openid
        ),
    )
)
# Placeholders only: the rows travel as one array per column (``set_writes.unnest``).
_CLAIM_ROWS_SQL = (
    "UPDATE delivery AS d SET"  # noqa: S608
    f" state = '{DeliveryState.sending.value}', attempts = d.attempts + 1, "
    "lease_until = CAST(%s AS TIMESTAMP WITH TIME ZONE), "
    "attempt_started_at = CAST(%s AS TIMESTAMP WITH TIME ZONE), "
    "updated_at = CAST(%s AS TIMESTAMP WITH TIME ZONE), "
    "channel_used = v.channel_used, oa_openid = COALESCE(v.oa_openid, d.oa_openid) "
    "FROM {values} AS v(id, channel_used, oa_openid) WHERE d.id = v.id"
)


def _mark_claimed(
    session: Session,
    claims: Sequence[Claim],
    lease_until: datetime,
    started_at: datetime | None,
    now: datetime,
) -> None:
    """One statement for the batch: ``sending``, the next attempt (the rows are locked, so attempts + 1
    is each claim's), the lease, and the channel each row goes out on (with the follower's OA openid)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        t = Delivery.__table__.c
        values, arrays = unnest(
            connection.dialect,
            [t.id, t.channel_used, t.oa_openid],
            [[claim.id, claim.channel_used.value, claim.oa_openid] for claim in claims],
        )
        connection.exec_driver_sql(
            _CLAIM_ROWS_SQL.format(values=values), (lease_until, started_at, now, *arrays)
        )
        return
    # SQLite, in-process: one executemany costs no round trips.
    _CLAIM_ROWS.execute(
        session,
        [
            {
                "b_lease_until": lease_until,
                "b_started_at": started_at,
                "b_now": now,
                "b_channel_used": claim.channel_used.value,
                "b_oa_openid": claim.oa_openid,
                "b_id": claim.id,
            }
            for claim in claims
        ],
    )


def start_claims(
    engine: sa.Engine,
    claims: Sequence[Claim],
    lease_seconds: int = DEFAULT_LEASE_SECONDS,
    now: datetime | None = None,
) -> list[Claim]:
    """Record that these claimed-ahead rows are about to go out; return the ones that may be sent.

    Committed before any byte of their requests leaves: a row whose lease runs out without this mark
    certainly never reached WeChat, so the reconciler may put it back in the queue. A row the
    reconciler (or another worker) has moved on from while it waited is not ours any more: it is
    fenced out here, by state and attempt, and must not be sent.
    """
    if not claims:
        return []
    now = now or utcnow()
    t = Delivery.__table__.c
    with write_transaction(engine) as session:
        current = {
            row.id: row.attempts
            for row in session.execute(
                sa.select(t.id, t.attempts)
                .where(
                    one_of(t.id, [c.id for c in claims], engine.dialect.name),
                    t.state == DeliveryState.sending.value,
                    t.attempt_started_at.is_(None),
                )
                .with_for_update(of=Delivery.__table__)
            )
        }
        ours = [claim for claim in claims if current.get(claim.id) == claim.attempt]
        if ours:
            # The lease is counted from the start: the wait for a free slot does not eat into it.
            session.execute(
                sa.update(Delivery.__table__)
                .where(one_of(t.id, [c.id for c in ours], engine.dialect.name))
                .values(attempt_started_at=now, lease_until=now + timedelta(seconds=lease_seconds))
            )
        return ours
