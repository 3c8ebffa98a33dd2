"""Declared user attribute keys: what the company's back end may write into ``WechatUser.attributes``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow

# The value types an attribute may hold. date: YYYY-MM-DD; datetime: an instant with its UTC offset.
ATTRIBUTE_TYPES = ("string", "number", "bool", "date", "datetime")


class UserAttribute(db.Model):
    """One declared key (``membership_expires_at``), its type and the label operators read.

    An upsert through ``/api/v1/users`` may only write declared keys, with values of the declared type,
    so a typo is an error naming the key instead of a key no segment ever finds.
    """

    __tablename__ = "user_attribute"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # one of ATTRIBUTE_TYPES
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<UserAttribute {self.key} {self.type}>"
