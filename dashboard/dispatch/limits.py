"""The operator's sending limits (rate, concurrency, the frequency cap) and the global pause, as the settings
page edits them."""

from __future__ import annotations

from ..audit.services import record
from ..extensions import db
from ..models import DispatchState
from .claim import load_dispatch_state

MAX_RATE = 100_000
MAX_CONCURRENCY = 1_000


def current_limits() -> DispatchState:
    state = load_dispatch_state(db.session)
    db.session.commit()
    return state


def update_limits(rate_per_second: int, concurrency: int) -> DispatchState:
    """Set the shared rate (all workers together) and each worker's concurrency. The caller commits.

    Workers read the rate at every claim; a new concurrency applies when a worker (re)starts.
    """
    state = load_dispatch_state(db.session, lock=True)
    changes = {}
    if state.rate_per_second != rate_per_second:
        changes["rate_per_second"] = [state.rate_per_second, rate_per_second]
        state.rate_per_second = rate_per_second
        state.tokens = min(state.tokens, float(rate_per_second))
    if state.concurrency != concurrency:
        changes["concurrency"] = [state.concurrency, concurrency]
        state.concurrency = concurrency
    if changes:
        record("sending_limits.updated", target_type="dispatch_state", target_id="1", **changes)
    return state


def update_frequency_cap(messages: int, days: int) -> DispatchState:
    """At most ``messages`` campaign messages per user in any ``days`` days (0 messages: no cap). The caller
    commits. The next claim counts with the new values (``frequency_cap``)."""
    state = load_dispatch_state(db.session, lock=True)
    changes = {}
    if state.frequency_cap_messages != messages:
        changes["frequency_cap_messages"] = [state.frequency_cap_messages, messages]
        state.frequency_cap_messages = messages
    if state.frequency_cap_days != days:
        changes["frequency_cap_days"] = [state.frequency_cap_days, days]
        state.frequency_cap_days = days
    if changes:
        record("sending_limits.updated", target_type="dispatch_state", target_id="1", **changes)
    return state


def resume_sending() -> None:
    """Lift a pause (45009) early, e.g. after clearing the quota in the WeChat console. The caller commits."""
    state = load_dispatch_state(db.session, lock=True)
    if state.paused_until is not None:
        record(
            "sending.resumed",
            target_type="dispatch_state",
            target_id="1",
            was_paused_until=state.paused_until.isoformat(),
        )
        state.paused_until = None
        state.paused_reason = ""
