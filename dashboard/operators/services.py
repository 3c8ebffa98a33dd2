"""Adding, re-roling and disabling operators."""

from __future__ import annotations

import secrets

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..audit.services import record
from ..auth.services import find_operator, normalize_email
from ..extensions import db
from ..models import Operator, Role


class OperatorError(ValueError):
    """A change that would break a rule (duplicate email, no admin left...). The message is for people."""


class ConfirmationNeeded(OperatorError):
    """Disabling an operator logs them out at once: the admin must confirm it first."""


GENERATED_PASSWORD_BYTES = 12  # token_urlsafe: 16 characters


# email-validator refuses special-use domains (RFC 6761/6762: local, test, localhost...). Operators
# of an intranet console often have ``.local`` addresses (the demo admin is admin@tongzhi.local), so
# that one suffix is allowed: the address is checked with it swapped for an ordinary top-level domain,
# everything else (local part, labels, lengths) as strictly as before.
ALLOWED_SPECIAL_SUFFIX = ".local"
STAND_IN_SUFFIX = ".example-tld"


def email_problem(email: str) -> str | None:
    """Why ``email`` is not an operator's address (for people), or None when it is one."""
    address = email.strip()
    checked = address
    if address.lower().endswith(ALLOWED_SPECIAL_SUFFIX) and "@" in address:
        checked = address[: -len(ALLOWED_SPECIAL_SUFFIX)] + STAND_IN_SUFFIX
    try:
        validate_email(checked, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return str(_l("Not a valid email address."))
    return None


def list_operators() -> list[Operator]:
    return list(db.session.scalars(select(Operator).order_by(Operator.email)))


def create_operator(email: str, password: str, role: Role | str, name: str = "") -> Operator:
    """Add an operator to the session. :raise OperatorError: if the email is taken."""
    email = normalize_email(email)
    problem = email_problem(email)
    if problem is not None:
        raise OperatorError(problem)
    if find_operator(email) is not None:
        raise OperatorError(_l("An operator with the email %(email)s already exists.", email=email))
    operator = Operator(email=email, name=(name or "").strip(), role=Role(role))
    operator.set_password(password)
    db.session.add(operator)
    db.session.flush()
    record("operator.created", operator, email=email, role=operator.role.value)
    return operator


def _active_admins() -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Operator)
        .where(Operator.role == Role.admin, Operator.is_disabled.is_(False))
    )


def update_operator(
    operator: Operator, *, role: Role | str, disabled: bool, acting: Operator, confirmed: bool = False
) -> None:
    """Change role and enabled state.

    :raise ConfirmationNeeded: when this disables the operator and ``confirmed`` is not set.
    :raise OperatorError: when the console would lose its last admin.
    """
    role = Role(role)
    loses_admin = (
        operator.role == Role.admin and not operator.is_disabled and (role != Role.admin or disabled)
    )
    if loses_admin and _active_admins() <= 1:
        raise OperatorError(_l("This is the last active admin; make another admin first."))
    if operator.id == acting.id and disabled:
        raise OperatorError(_l("You cannot disable your own account."))
    if disabled and not operator.is_disabled and not confirmed:
        raise ConfirmationNeeded(_l("Confirm that %(email)s is to be disabled.", email=operator.email))
    changes = {}
    if operator.role != role:
        changes["role"] = [operator.role.value, role.value]
        operator.role = role
    if operator.is_disabled != disabled:
        changes["disabled"] = [operator.is_disabled, disabled]
        operator.is_disabled = disabled
    if changes:
        record("operator.updated", operator, **changes)


def unlock(operator: Operator) -> None:
    operator.locked_until = None
    operator.failed_logins = 0
    record("operator.unlocked", operator)


def reset_password(operator: Operator, *, acting: Operator, password: str = "") -> str:
    """Give ``operator`` a temporary password (``password``, or a generated one when empty) that they
    must change at their next login; their lockout ends. Returns the temporary password, which is
    shown once to the admin and never stored or logged in clear.

    :raise OperatorError: for one's own account (the account page changes it, knowing the current one).
    """
    if operator.id == acting.id:
        raise OperatorError(_l("Change your own password on your account page."))
    generated = not password
    if generated:
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    operator.set_password(password)
    operator.must_change_password = True
    operator.failed_logins = 0
    operator.locked_until = None
    record("operator.password_reset", operator, generated=generated)
    return password
