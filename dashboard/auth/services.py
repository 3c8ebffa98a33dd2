"""Logging in, with a lockout after repeated failures, and changing one's own password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from ..audit.services import record
from ..extensions import db
from ..models import Operator, utcnow
from ..models.operator import spend_password_check


@dataclass(frozen=True)
class LoginResult:
    operator: Operator | None = None
    failure: str | None = None  # "credentials", "locked", "disabled"

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
    """Check a login attempt and record it in the audit log. The caller commits the outcome.

    After ``LOGIN_MAX_FAILURES`` wrong passwords in a row the account is locked for
    ``LOGIN_LOCKOUT_MINUTES``; while locked even the right password is refused. Each attempt first
    claims one of the allowed failures in its own committed UPDATE (``claim_attempt``), so parallel
    attempts can never check more passwords than the limit, and exactly one of them locks.

    Every answer but a success costs one password hash, and an unknown email is refused exactly
    like a known one (same failure, same cost), so neither the answer nor its timing tells an
    attacker which accounts exist.
    """
    now = now or utcnow()
    operator = find_operator(email)
    if operator is None:
        spend_password_check(password)
        record(
            "auth.login_failed", target_type="operator", actor_email=normalize_email(email), reason="unknown"
        )
        return LoginResult(failure="credentials")
    failures = claim_attempt(operator, now)
    if failures is None:
        spend_password_check(password)
        record("auth.login_refused", operator, actor=operator, reason="locked")
        return LoginResult(failure="locked")
    if not operator.check_password(password):
        record("auth.login_failed", operator, actor=operator, reason="password", failures=failures)
        if failures >= current_app.config["LOGIN_MAX_FAILURES"]:
            # Only the attempt that claimed the last allowed failure gets here: one lock, one event.
            operator.locked_until = now + timedelta(minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"])
            operator.failed_logins = 0
            record("auth.locked", operator, actor=operator, until=operator.locked_until.isoformat())
            return LoginResult(failure="locked")
        return LoginResult(failure="credentials")
    # The right password ends the run of failures, whether or not the account may log in.
    operator.failed_logins = 0
    if operator.is_disabled:
        record("auth.login_refused", operator, actor=operator, reason="disabled")
        return LoginResult(failure="disabled")
    operator.locked_until = None
    operator.last_login_at = now
    record("auth.login", operator, actor=operator)
    return LoginResult(operator=operator)


def claim_attempt(operator: Operator, now: datetime) -> int | None:
    """Count this attempt as a failure before its password is checked, and commit that at once.

    One conditional UPDATE, atomic on PostgreSQL (row lock) and SQLite (the single writer): it adds
    one only while the account is unlocked and under the limit, and returns the new count, or None
    when no attempt may be made now. Committing before the slow hash lets parallel attempts see it.
    A success resets the count, so a right password is not left counted as a failure.
    """
    claimed = db.session.execute(
        update(Operator)
        .where(
            Operator.id == operator.id,
            Operator.failed_logins < current_app.config["LOGIN_MAX_FAILURES"],
            or_(Operator.locked_until.is_(None), Operator.locked_until <= now),
        )
        .values(failed_logins=Operator.failed_logins + 1)
        .returning(Operator.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    db.session.commit()
    return claimed


def change_password(operator: Operator, new_password: str) -> None:
    """Set the operator's own new password; a temporary one set by an admin is replaced."""
    forced = operator.must_change_password
    operator.set_password(new_password)
    operator.must_change_password = False
    record("operator.password_changed", operator, **({"after_reset": True} if forced else {}))


def set_locale(operator: Operator, locale: str) -> None:
    operator.locale = locale
    record("operator.locale_changed", operator, locale=locale)
