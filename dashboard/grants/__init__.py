"""The grant ledger: what users allowed, and what sends drew from it.

``services`` records prompt answers (client reports, WeChat's popup and change events) and reads balances;
``ledger`` is the dispatch engine's way in: reserve a credit before a send, then spend, release or zero it;
``kinds`` knows each template's kind and converts the balances when the catalog changes it.
"""

from .kinds import convert_balances
from .ledger import (
    GrantLedger,
    ReservationResult,
    ReserveOutcome,
    release_credit,
    reserve_credit,
    spend_credit,
    zero_credits,
)
from .services import LedgerPolicy, balances_for, has_live_grant, live_condition, record_answers

__all__ = [
    "GrantLedger",
    "LedgerPolicy",
    "ReservationResult",
    "ReserveOutcome",
    "balances_for",
    "convert_balances",
    "has_live_grant",
    "live_condition",
    "record_answers",
    "release_credit",
    "reserve_credit",
    "spend_credit",
    "zero_credits",
]
