"""Which campaigns' rows the claim may take now: paused, cancelled or in quiet hours are held,
and a campaign with its own rate gets at most that many rows a second.

Read once per claim from the (small) campaign table, under the dispatch-state lock every claim holds, so
the campaigns' token buckets need no lock of their own. Rows of no campaign, or of a campaign id with no
campaign row (the benchmark's seeded rows), are never held.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..models.campaign import Campaign, CampaignState

# A cancelled campaign's rows still in flight when it was cancelled may come back as retry_wait; they
# are held (and skipped by the campaign supervisor) for this long after the cancel.
CANCELLED_HOLD = timedelta(days=1)
# Drafts and scheduled campaigns have no rows yet (the snapshot is taken when they start): only paused
# ones need holding, which keeps the list the claim excludes short.
_NOT_SENDING = (CampaignState.paused,)


def in_quiet_hours(start: time, end: time, zone: str, now: datetime) -> bool:
    """Whether ``now`` falls in the local window [start, end) of ``zone``; the window may span midnight."""
    local = now.astimezone(ZoneInfo(zone)).time().replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


@dataclass
class Gate:
    held: set[int] = field(default_factory=set)
    caps: dict[int, int] = field(default_factory=dict)  # campaign id → rows it may have this claim
    taken: Counter[int] = field(default_factory=Counter)
    # A campaign waits for its own rate: a claim that found nothing should try again shortly.
    rate_held: bool = False

    def admits(self, campaign_id: int | None) -> bool:
        """Count one row of ``campaign_id`` against its rate, if it has one; False when none is left."""
        if campaign_id is None or campaign_id not in self.caps:
            return True
        if self.taken[campaign_id] >= self.caps[campaign_id]:
            self.rate_held = True
            return False
        self.taken[campaign_id] += 1
        return True

    def spend(self, session: Session, now: datetime) -> None:
        for campaign_id, taken in self.taken.items():
            session.execute(
                sa.update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(rate_tokens=Campaign.rate_tokens - taken)
                .execution_options(synchronize_session=False)
            )


def load_gate(session: Session, now: datetime) -> Gate:
    c = Campaign.__table__.c
    rows = session.execute(
        sa.select(
            c.id,
            c.state,
            c.quiet_start,
            c.quiet_end,
            c.timezone,
            c.rate_per_second,
            c.rate_tokens,
            c.rate_tokens_at,
        ).where(
            sa.or_(
                c.state.in_([state.value for state in _NOT_SENDING]),
                sa.and_(c.state == CampaignState.cancelled.value, c.finished_at > now - CANCELLED_HOLD),
                sa.and_(
                    c.state == CampaignState.running.value,
                    sa.or_(c.quiet_start.is_not(None), c.rate_per_second.is_not(None)),
                ),
            )
        )
    ).all()
    gate = Gate()
    for row in rows:
        if row.state != CampaignState.running.value:
            gate.held.add(row.id)
            continue
        if row.quiet_start is not None and row.quiet_end is not None:
            if in_quiet_hours(row.quiet_start, row.quiet_end, row.timezone, now):
                gate.held.add(row.id)
                continue
        if row.rate_per_second:
            # The campaign's own bucket: one second's worth at most, refilled at its rate.
            last = row.rate_tokens_at
            elapsed = 1.0 if last is None else max((now - last).total_seconds(), 0.0)
            tokens = min(float(row.rate_per_second), row.rate_tokens + elapsed * row.rate_per_second)
            session.execute(
                sa.update(Campaign)
                .where(Campaign.id == row.id)
                .values(rate_tokens=tokens, rate_tokens_at=now)
                .execution_options(synchronize_session=False)
            )
            allowance = math.floor(tokens)
            if allowance <= 0:
                gate.held.add(row.id)
                gate.rate_held = True
            else:
                gate.caps[row.id] = allowance
    return gate


def not_held(campaign_column: sa.ColumnElement, gate: Gate) -> sa.ColumnElement[bool]:
    """The claim's condition: rows of no campaign, or of a campaign that is not held."""
    if not gate.held:
        return sa.true()
    return sa.or_(campaign_column.is_(None), campaign_column.not_in(sorted(gate.held)))
