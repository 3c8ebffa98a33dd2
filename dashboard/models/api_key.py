"""API keys: how the company's other back ends authenticate to /api/v1."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

# send: send messages and read the ones this key sent; read: read the ones this key sent (send includes
# it); read_all: read every message sent through the API, whichever key sent it (a reporting back end).
# campaigns: compose, launch and control campaigns; users: upsert users and declare attribute keys
SCOPES = ("send", "read", "read_all", "campaigns", "users")


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
        # "send" implies reading what one sent, and "read_all" reading anything.
        scopes = self.scope_list
        return scope in scopes or (scope == "read" and ("send" in scopes or "read_all" in scopes))

    def may_read(self, created_by_key_id: int | None) -> bool:
        """Whether this key may see a message created by the key ``created_by_key_id``."""
        return created_by_key_id == self.id or "read_all" in self.scope_list

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
