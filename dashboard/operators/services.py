"""Adding, re-roling and disabling operators."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..audit.services import record
from ..auth.services import find_operator, normalize_email
from ..extensions import db
from ..models import Operator, Role


class OperatorError(ValueError):
    """A change that would break a rule (duplicate email, no admin left...). The message is for people."""


def list_operators() -> list[Operator]:
    return list(db.session.scalars(select(Operator).order_by(Operator.email)))


def create_operator(email: str, password: str, role: Role | str, name: str = "") -> Operator:
    """Add an operator to the session. :raise OperatorError: if the email is taken."""
    email = normalize_email(email)
    if find_operator(email) is not None:
        raise OperatorError(_l("An operator with the email %(email)s already exists.", email=email))
    operator = Operator(email=email, name=name.strip(), role=Role(role))
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


def update_operator(operator: Operator, *, role: Role | str, disabled: bool, acting: Operator) -> None:
    """Change role and enabled state. :raise OperatorError: when the console would lose its last admin."""
    role = Role(role)
    loses_admin = (
        operator.role == Role.admin and not operator.is_disabled and (role != Role.admin or disabled)
    )
    if loses_admin and _active_admins() <= 1:
        raise OperatorError(_l("This is the last active admin; make another admin first."))
    if operator.id == acting.id and disabled:
        raise OperatorError(_l("You cannot disable your own account."))
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
