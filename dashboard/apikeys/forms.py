from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget


class ApiKeyCreateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    scopes = SelectMultipleField(
        _l("Scopes"),
        choices=[
            SelectChoice("send", _l("send: send messages and read them")),
            SelectChoice("read", _l("read: read messages only")),
        ],
        default=["send"],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
