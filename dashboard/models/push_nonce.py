"""The (timestamp, nonce) of each signed WeChat push accepted recently, so one signature works once.

Kept only while its timestamp is inside ``WECHAT_PUSH_MAX_AGE_SECONDS``: older requests are refused on
their timestamp alone. The unique constraint leads with ``timestamp`` so the same index serves the
pruning of old rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class PushNonce(db.Model):
    __tablename__ = "push_nonce"
    __table_args__ = (UniqueConstraint("timestamp", "nonce", name="uq_push_nonce_timestamp_nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger)  # the signed query's, unix seconds
    nonce: Mapped[str] = mapped_column(String(64))
    # sha256 of the message the request carried: the same request again is a repeat, not a forgery.
    body_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
