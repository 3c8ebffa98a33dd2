from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from ..audience.attributes import MAX_LABEL_LENGTH, TYPE_LABELS
from ..audience.segments import ATTRIBUTE_KEY_RE
from ..models.user_attribute import ATTRIBUTE_TYPES


def type_choices():
    return [(kind, TYPE_LABELS[kind]) for kind in ATTRIBUTE_TYPES]


class _LabelAndType(FlaskForm):
    label = StringField(
        _l("Label"),
        validators=[
            DataRequired(),
            Length(max=MAX_LABEL_LENGTH),
            Regexp(r"^[^\x00-\x1f\x7f]*$", message=_l("No line breaks or tabs.")),
        ],
    )
    type = SelectField(_l("Type"), choices=type_choices, default="string")


class AttributeCreateForm(_LabelAndType):
    key = StringField(
        _l("Attribute key"),
        validators=[
            DataRequired(),
            Regexp(
                ATTRIBUTE_KEY_RE.pattern,
                message=_l("A letter, digit or _ first, then letters, digits, _ . or - (at most 40)."),
            ),
        ],
    )


class AttributeEditForm(_LabelAndType):
    pass
