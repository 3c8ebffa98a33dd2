from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..models import Role
from ..models.operator import MIN_PASSWORD_LENGTH
from .services import email_problem


def operator_email(form, field) -> None:
    """WTForms' ``Email()`` refuses ``.local`` domains (email-validator's special-use names)."""
    problem = email_problem(field.data or "")
    if problem is not None:
        raise ValidationError(problem)


def role_choices():
    return [
        (Role.viewer.value, _l("Viewer")),
        (Role.marketer.value, _l("Marketer")),
        (Role.admin.value, _l("Admin")),
    ]


class OperatorCreateForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), operator_email, Length(max=254)])
    name = StringField(_l("Full name"), validators=[Length(max=80)])
    role = SelectField(_l("Role"), choices=role_choices, default=Role.viewer.value)
    password = PasswordField(
        _l("Initial password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=1024)]
    )


class OperatorUpdateForm(FlaskForm):
    role = SelectField(_l("Role"), choices=role_choices)
    disabled = BooleanField(_l("Disabled"))


class PasswordResetForm(FlaskForm):
    password = PasswordField(
        _l("Temporary password"),
        validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=1024)],
    )
