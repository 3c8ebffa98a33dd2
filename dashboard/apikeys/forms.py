from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget


class ApiKeyCreateForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=80)])
    scopes = SelectMultipleField(
        _l("Scopes"),
        choices=[
            SelectChoice("send", _l("send: send messages and read the ones this key sent")),
            # A read-only key for its own messages would see nothing: a key that only reads needs read_all.
            SelectChoice(
                "read_all", _l("read_all: read every message sent through the API, whichever key sent it")
            ),
            SelectChoice(
                "campaigns", _l("campaigns: build segments and compose, launch and control campaigns")
            ),
            SelectChoice("users", _l("users: write users' attributes and tags, declare attribute keys")),
        ],
        default=["send"],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class ApiKeyRevokeForm(FlaskForm):
    # Checked by the view: an unticked box is answered with a message on the page, not a 400.
    confirm = BooleanField(_l("I understand, revoke this key"))
