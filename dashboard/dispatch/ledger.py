"""The dispatch engine's view of the grant ledger: reserve before the call, settle after it.

Both run inside the engine's transactions (the claim, the finalize), with the engine's session, so a
credit is reserved in the same commit that marks the row ``sending`` and settled in the same commit
that records WeChat's answer: a crash can never spend a credit without a row saying so, or twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from .outcomes import LedgerAction


@dataclass(frozen=True)
class ReservationRequest:
    """A row about to be claimed asks the ledger for a credit: who, which template, which kind of send.

    The ledger answers per row (``CreditLedger.reserve``); ``dashboard.grants.ledger.ReservationResult`` is
    that answer for one send.
    """

    delivery_id: int
    user_id: int | None
    openid: str
    template_id: str
    source: str  # "campaign" | "api" | "test"
    attempts: int | None = None  # the row's attempts before this claim (0: never claimed, no ledger events)


@dataclass(frozen=True)
class Settlement:
    delivery_id: int
    user_id: int | None
    openid: str
    template_id: str
    action: LedgerAction


class CreditLedger(Protocol):
    def reserve(self, session: Session, rows: Sequence[ReservationRequest]) -> dict[int, str | None]:
        """Reserve one credit per row (long-term grants are checked, not spent).

        Returns, per delivery id, ``None`` when the row may be sent, or a skip reason
        (``no_grant``, ``budget``...) when it must not be: such rows become ``skipped``.
        """

    def settle(self, session: Session, settlements: Sequence[Settlement]) -> None:
        """Spend, release or zero the credits reserved for these rows."""
