"""Operators: the people who log in to the console, and their roles."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from functools import cache

from flask_login import UserMixin
from sqlalchemy import Enum, String, false
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from .types import UTCDateTime, utcnow

# scrypt is a memory-hard KDF; Werkzeug stores its parameters in the hash so they can be raised later.
PASSWORD_METHOD = "scrypt:32768:8:1"  # noqa: S105 (a hash method name, not a password)
MIN_PASSWORD_LENGTH = 10


@cache
def _throwaway_hash() -> str:
    # A hash of a random password nobody knows, made once per process with the method real hashes use.
    return generate_password_hash(secrets.token_urlsafe(24), method=PASSWORD_METHOD)


def spend_password_check(password: str) -> None:
    """Check ``password`` against a throwaway hash and ignore the answer.

    A refusal that needs no real check (an unknown email, a locked account) does this so that it costs
    what a real check costs: answering faster would tell an attacker which accounts exist.
    """
    check_password_hash(_throwaway_hash(), password)


class Role(enum.StrEnum):
    """Roles are ordered: each one may do everything the ones before it may."""

    viewer = "viewer"
    marketer = "marketer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class Operator(UserMixin, db.Model):
    __tablename__ = "operator"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16, validate_strings=True))
    is_disabled: Mapped[bool] = mapped_column(default=False)
    # An admin set a temporary password: the operator must choose their own before anything else.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    locale: Mapped[str | None] = mapped_column(String(8))
    # Wrong passwords in a row; an attempt claims its count before its check (auth.services.claim_attempt).
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    # Flask-Login consults this: a disabled operator's session stops working at once.
    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return not self.is_disabled

    def __repr__(self) -> str:
        return f"<Operator {self.email} {self.role}>"
