"""The sending machinery's shared state: one row that every worker on every machine reads.

It carries the operator's sending limits (rate, concurrency, the frequency cap), the global token bucket
that enforces the rate across workers, and a pause (WeChat's daily quota, 45009, stops every sender at once).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

DISPATCH_STATE_ID = 1


class DispatchState(db.Model):
    __tablename__ = "dispatch_state"

    id: Mapped[int] = mapped_column(primary_key=True, default=DISPATCH_STATE_ID)
    rate_per_second: Mapped[int] = mapped_column(default=500)
    concurrency: Mapped[int] = mapped_column(default=64)
    # Token bucket: ``tokens`` as of ``tokens_at``; refilled at ``rate_per_second`` up to one second's worth.
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    tokens_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_reason: Mapped[str] = mapped_column(String(200), default="")
    # The frequency cap (``dispatch.frequency_cap``): at most this many campaign messages per user in any
    # window of ``frequency_cap_days`` days; 0 messages = no cap.
    frequency_cap_messages: Mapped[int] = mapped_column(default=3, server_default="3")
    frequency_cap_days: Mapped[int] = mapped_column(default=7, server_default="7")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
