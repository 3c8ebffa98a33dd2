"""Reserve a credit for each row about to be sent; a row the ledger refuses is skipped, not sent.

Shared by the engine's claim (``claim.claim_due``) and the test send (``deliveries.services.send_now``),
so a send without a credit ends the same way whichever path asked for it: state ``skipped`` with the
ledger's reason (``no_grant``, ``budget``), written in the caller's transaction, and WeChat never called.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..bulk_writes import BulkWrite
from ..models import Delivery, DeliveryState
from .ledger import CreditLedger, ReservationRequest

_MARK_SKIPPED = BulkWrite(
    sa.update(Delivery.__table__)
    .where(Delivery.__table__.c.id == sa.bindparam("b_id"))
    .values(state=sa.bindparam("b_state"), reason=sa.bindparam("b_reason"), updated_at=sa.bindparam("b_now"))
)


def reserve_or_skip(
    session: Session | scoped_session,
    ledger: CreditLedger,
    requests: Sequence[ReservationRequest],
    now: datetime,
) -> dict[int, str]:
    """Reserve one credit per request; mark the refused rows ``skipped``. Nothing is committed.

    :returns: the skip reason of each refused delivery id; every other row holds its credit and may go out.
    """
    if not requests:
        return {}
    verdicts = ledger.reserve(session, requests)  # type: ignore[arg-type]
    refused = {r.delivery_id: reason for r in requests if (reason := verdicts.get(r.delivery_id))}
    mark_skipped(session, refused, now)
    return refused


def mark_skipped(session: Session | scoped_session, reasons: dict[int, str], now: datetime) -> None:
    """Make these rows ``skipped`` with their reason (the ledger's, or the claim's ``frequency_cap``)."""
    _MARK_SKIPPED.execute(
        session,
        [
            {"b_id": delivery_id, "b_state": DeliveryState.skipped, "b_reason": reason, "b_now": now}
            for delivery_id, reason in reasons.items()
        ],
    )
