"""Logging in, with a lockout after repeated failures, and changing one's own password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..audit.services import record
from ..extensions import db
from ..models import Operator, utcnow


@dataclass(frozen=True)
class LoginResult:
    operator: Operator | None = None
    failure: str | None = None  # "credentials", "locked", "disabled"
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.operator is not None and self.failure is None


def load_operator(operator_id: str) -> Operator | None:
    """Flask-Login's loader: a disabled operator is logged out on their next request."""
    if not operator_id.isdigit():
        return None
    operator = db.session.get(Operator, int(operator_id))
    return operator if operator is not None and operator.is_active else None


def find_operator(email: str) -> Operator | None:
    return db.session.scalar(select(Operator).where(Operator.email == normalize_email(email)))


def normalize_email(email: str) -> str:
    return email.strip().lower()


def authenticate(email: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a login attempt and record it in the audit log. The caller commits.

    After ``LOGIN_MAX_FAILURES`` wrong passwords in a row the account is locked for
    ``LOGIN_LOCKOUT_MINUTES``; while locked even the right password is refused.
    """
    now = now or utcnow()
    operator = find_operator(email)
    if operator is None:
        # Same answer as a wrong password: the form must not reveal which emails exist.
        record(
            "auth.login_failed", target_type="operator", actor_email=normalize_email(email), reason="unknown"
        )
        return LoginResult(failure="credentials")
    if operator.is_locked(now):
        record("auth.login_refused", operator, actor=operator, reason="locked")
        return LoginResult(failure="locked", locked_until=operator.locked_until)
    if not operator.check_password(password):
        operator.failed_logins += 1
        record(
            "auth.login_failed", operator, actor=operator, reason="password", failures=operator.failed_logins
        )
        if operator.failed_logins >= current_app.config["LOGIN_MAX_FAILURES"]:
            operator.locked_until = now + timedelta(minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"])
            operator.failed_logins = 0
            record("auth.locked", operator, actor=operator, until=operator.locked_until.isoformat())
            return LoginResult(failure="locked", locked_until=operator.locked_until)
        return LoginResult(failure="credentials")
    if operator.is_disabled:
        record("auth.login_refused", operator, actor=operator, reason="disabled")
        return LoginResult(failure="disabled")
    operator.failed_logins = 0
    operator.locked_until = None
    operator.last_login_at = now
    record("auth.login", operator, actor=operator)
    return LoginResult(operator=operator)


def change_password(operator: Operator, new_password: str) -> None:
    operator.set_password(new_password)
    record("operator.password_changed", operator)


def set_locale(operator: Operator, locale: str) -> None:
    operator.locale = locale
    record("operator.locale_changed", operator, locale=locale)
