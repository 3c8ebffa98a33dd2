"""API keys: how the company's other back ends authenticate to /api/v1."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

SCOPES = ("send", "read")


class ApiKey(db.Model):
    """A named, scoped, revocable key. Only a SHA-256 of the key is stored; the key is shown once.

    SHA-256 (not a slow KDF) is enough because keys are 256 random bits, not passwords, and it lets
    a request find its key by an indexed lookup.
    """

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(64))  # space-separated, from SCOPES
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    def allows(self, scope: str) -> bool:
        # "send" implies reading what one sent.
        return scope in self.scope_list or (scope == "read" and "send" in self.scope_list)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
