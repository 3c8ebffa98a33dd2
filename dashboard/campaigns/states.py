"""The campaign state machine, in one place: which moves are allowed, and the one function that makes them.

A move is a conditional UPDATE (``WHERE id = ? AND state = <from>``), so two operators or API calls
making the same move at once make it once: the database serialises the two updates (a row lock on
PostgreSQL, the single writer on SQLite), and the second finds the state already changed and is refused
with a sentence saying what the campaign is now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..models.campaign import Campaign, CampaignState
from ..models.types import utcnow

S = CampaignState

# The only moves there are. Everything else is refused.
TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    S.draft: frozenset({S.scheduled, S.running, S.cancelled}),
    S.scheduled: frozenset({S.running, S.cancelled}),
    S.running: frozenset({S.paused, S.completed, S.cancelled}),
    S.paused: frozenset({S.running, S.cancelled}),
    # Back to running only to re-send failures that may pass now ("retry transient failures").
    S.completed: frozenset({S.running}),
    S.cancelled: frozenset(),
    S.missed: frozenset(),  # a one-off campaign is never missed
}
# A recurring campaign: scheduled (its runs are made) ↔ paused (none are), until cancelled.
RECURRING_TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    S.draft: frozenset({S.scheduled, S.cancelled}),
    S.scheduled: frozenset({S.paused, S.cancelled}),
    S.paused: frozenset({S.scheduled, S.cancelled}),
    S.running: frozenset(),
    S.completed: frozenset(),
    S.cancelled: frozenset(),
    S.missed: frozenset(),
}
# A run of a recurring campaign: a one-off campaign that may also be missed.
RUN_TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    **TRANSITIONS,
    S.scheduled: TRANSITIONS[S.scheduled] | {S.missed},
}
# The states a run is created in (``recurring.record_due_occurrences``).
RUN_CREATED_STATES = frozenset({S.scheduled, S.missed})
ONE_OFF, RECURRING, RUN = "one_off", "recurring", "run"
TABLES = {ONE_OFF: TRANSITIONS, RECURRING: RECURRING_TRANSITIONS, RUN: RUN_TRANSITIONS}

# What may be edited in each state: everything in a draft; in a pause, the values and the rate only
# (the recipients are fixed at start, the template and segment with them).
EDITABLE_FIELDS: dict[CampaignState, frozenset[str] | None] = {
    S.draft: None,  # every field
    S.paused: frozenset({"data", "oa_data", "rate_per_second"}),
}

# Why a campaign cannot take a move, said for the state it is in.
_REFUSALS = {
    S.running: "The campaign is already running.",
    S.scheduled: "The campaign is already scheduled.",
    S.paused: "The campaign is paused.",
    S.completed: "The campaign has completed.",
    S.cancelled: "The campaign was cancelled.",
    S.draft: "The campaign is still a draft and has not been launched.",
    S.missed: "This occurrence was missed: it never ran.",
}


class InvalidTransition(Exception):
    """The state machine forbids this move (or edit); ``message`` says why, for people."""

    def __init__(self, current: CampaignState, target: CampaignState | None, message: str) -> None:
        super().__init__(message)
        self.current, self.target, self.message = current, target, message


def kind(schedule: Any, parent_id: int | None) -> str:
    """Which table of moves a campaign follows."""
    if schedule is not None:
        return RECURRING
    return RUN if parent_id is not None else ONE_OFF


def kind_of(campaign: Campaign) -> str:
    return kind(campaign.schedule, campaign.parent_id)


def allowed(current: CampaignState, target: CampaignState, of: str = ONE_OFF) -> bool:
    return target in TABLES[of][current]


def refusal(current: CampaignState, target: CampaignState, of: str = ONE_OFF) -> str:
    if of == RECURRING and target == S.running:
        return (
            "A recurring campaign never sends itself: each occurrence is a run of its own. "
            f"It cannot become {target.value} from {current.value}."
        )
    return f"{_REFUSALS[current]} It cannot become {target.value} from {current.value}."


def check_edit(campaign: Campaign, fields: Iterable[str]) -> None:
    """:raise InvalidTransition: when the campaign's state does not allow editing these fields."""
    fields = set(fields)
    editable = EDITABLE_FIELDS.get(campaign.state, frozenset())
    if editable is None or fields <= editable:
        return
    if campaign.state == S.paused:
        message = (
            "A paused campaign may change only its values and its rate; its template, segment and "
            "schedule were fixed when it started."
        )
    else:
        message = f"{_REFUSALS[campaign.state]} Only a draft can be edited."
    raise InvalidTransition(campaign.state, None, message)


def move(
    session: Session,
    campaign_id: int,
    target: CampaignState,
    *,
    now: datetime | None = None,
    sources: Iterable[CampaignState] | None = None,
    **values: Any,
) -> CampaignState:
    """Move the campaign to ``target`` (with ``values`` written in the same UPDATE); return the state
    it came from. The caller commits (so work that belongs to the move, such as the snapshot of a
    launch, commits with it or not at all).

    ``sources`` narrows the states the move may come from (default: every state the table allows).
    :raise InvalidTransition: the move is not allowed from the current state, or another move won.
    :raise LookupError: there is no such campaign.
    """
    now = now or utcnow()
    found = session.execute(
        sa.select(Campaign.state, Campaign.schedule, Campaign.parent_id).where(Campaign.id == campaign_id)
    ).one_or_none()
    if found is None:
        raise LookupError(campaign_id)
    current, of = found.state, kind(found.schedule, found.parent_id)
    froms = [state for state in (sources or TABLES[of]) if allowed(state, target, of)]
    if current not in froms:
        raise InvalidTransition(current, target, refusal(current, target, of))
    stamps: dict[str, Any] = {"state": target, "updated_at": now}
    if target in (S.completed, S.cancelled, S.missed):
        stamps["finished_at"] = now
    if target == S.running and "hold_code" not in values:
        stamps["hold_code"], stamps["hold_args"] = "", {}
    result = session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state == current)
        .values(**stamps, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        # Someone else moved it between our read and our update: tell what it is now.
        session.rollback()
        now_state = session.scalar(sa.select(Campaign.state).where(Campaign.id == campaign_id))
        raise InvalidTransition(now_state, target, refusal(now_state, target, of))
    return current
