from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from ..models.operator import MIN_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    new_password = PasswordField(
        _l("New password"), validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=1024)]
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The two passwords differ."))],
    )

    def __init__(self, operator, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.operator = operator

    def validate_current_password(self, field):
        if not self.operator.check_password(field.data or ""):
            raise ValidationError(_l("That is not your current password."))

    def validate_new_password(self, field):
        if field.data and field.data == self.current_password.data:
            raise ValidationError(_l("Choose a password different from the current one."))
