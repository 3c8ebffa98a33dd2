from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectChoice, SelectField, StringField, TextAreaField

# The conditions the form can add without typing JSON (the JSON box takes every kind).
QUICK_LEAVES = [
    SelectChoice("tag", _l("Has tag")),
    SelectChoice("tags_none", _l("Has none of the tags (comma separated)")),
    SelectChoice("attribute", _l("Attribute")),
    SelectChoice("grant", _l("Holds a live grant for template")),
    SelectChoice("seen_within_days", _l("Seen within days")),
    SelectChoice("has_unionid", _l("Has a unionid")),
    SelectChoice("main_switch", _l("Main switch reported on")),
    SelectChoice("granted_in_scene", _l("Granted in scene")),
]
ATTRIBUTE_OP_LABELS = [
    SelectChoice("eq", _l("equals")),
    SelectChoice("contains", _l("contains")),
    SelectChoice("set", _l("is set")),
    SelectChoice("unset", _l("is not set")),
    SelectChoice("before", _l("before (date)")),
    SelectChoice("after", _l("after (date)")),
    SelectChoice("within_next_days", _l("within the next N days")),
    SelectChoice("within_last_days", _l("within the last N days")),
]


class SegmentForm(FlaskForm):
    # Choices are not checked here: the filter's own validation names a wrong one.
    name = StringField(_l("Segment name"))
    filter = TextAreaField(_l("Filter (JSON)"))
    openids_csv = FileField(_l("Narrow to a list of openids (CSV, optional)"))
    # "Add a condition": one leaf built from these, added to the filter's top-level "all".
    leaf = SelectField(_l("Condition"), choices=QUICK_LEAVES, validate_choice=False)
    leaf_key = StringField(_l("Attribute or template"))
    leaf_op = SelectField(_l("Operator"), choices=ATTRIBUTE_OP_LABELS, validate_choice=False)
    leaf_value = StringField(_l("Value"))
