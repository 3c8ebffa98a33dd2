"""Retry transient failures: a campaign's failed rows whose error class may pass if sent again go back to
``pending``, and the dispatch engine sends them like any other row (the claim reserves a credit first).

Which rows: ``failed`` with an error class in ``report.RETRYABLE_CLASSES`` (transient, token, quota,
config) — in practice rows that gave up after ``dispatch.outcomes.MAX_ATTEMPTS`` temporary errors. Never
a row that was sent, whose outcome is unknown (it may have arrived), or that failed for a reason a resend
cannot fix (no grant, the content, the recipient, the template, the page, an unknown code).

A row keeps its attempt count (the fencing token of ``dispatch.finalize``), so a late answer of an old
attempt can never land on it; the next transient answer fails it again at once rather than after a new
series of backoffs: one retry per click.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ..extensions import db
from ..models import Delivery, DeliveryState
from ..models.campaign import Campaign, CampaignState
from ..models.types import utcnow
from . import states
from .report import retryable
from .states import InvalidTransition

S = CampaignState
# A draft or scheduled campaign has no rows yet, a cancelled one sends nothing more.
RETRY_STATES = (S.running, S.paused, S.completed)


def retryable_count(campaign_id: int) -> int:
    d = Delivery.__table__.c
    return (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Delivery).where(d.campaign_id == campaign_id, retryable())
        )
        or 0
    )


def retry_failed(campaign_id: int, now: datetime | None = None) -> int:
    """Send the campaign's retryable failures again; returns how many rows went back to the queue.

    A completed campaign goes back to running (the state machine's ``completed → running``), in the same
    transaction as the rows, and completes again once they are done; a paused one keeps its rows until it
    is resumed. The caller commits.

    :raise InvalidTransition: the campaign is a draft, scheduled or cancelled (or moved meanwhile).
    :raise LookupError: there is no such campaign.
    """
    now = now or utcnow()
    state = db.session.scalar(sa.select(Campaign.state).where(Campaign.id == campaign_id))
    if state is None:
        raise LookupError(campaign_id)
    if state not in RETRY_STATES:
        raise InvalidTransition(state, None, f"{states.refusal(state, S.running)}")
    if not retryable_count(campaign_id):
        return 0
    if state == S.completed:
        states.move(db.session, campaign_id, S.running, now=now, sources=(S.completed,), finished_at=None)
    d = Delivery.__table__.c
    return db.session.execute(
        sa.update(Delivery.__table__)
        .where(d.campaign_id == campaign_id, retryable())
        .values(
            state=DeliveryState.pending.value,
            reason="",
            errcode=None,
            errmsg="",
            not_before=None,
            lease_until=None,
            attempt_started_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
