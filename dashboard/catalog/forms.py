"""Forms of the template catalog. Keyword values of the preview are read per key by the view, since
each template has its own keywords."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from ..wechat.keywords import parse_content
from .library import SCENE_DESC_MAX
from .services import SCENE_RE, TEMPLATE_ID_RE, normalise_content


def kind_choices():
    return [("one_time", _l("One-time")), ("long_term", _l("Long-term"))]


def state_choices():
    return [
        ("formal", _l("formal (released)")),
        ("trial", _l("trial (preview build)")),
        ("developer", _l("developer (development build)")),
    ]


def lang_choices():
    return [
        ("zh_CN", _l("zh_CN (简体中文)")),
        ("en_US", _l("en_US (English)")),
        ("zh_HK", _l("zh_HK (繁體中文 香港)")),
        ("zh_TW", _l("zh_TW (繁體中文 台灣)")),
    ]


def fit_choices():
    return [("reject", _l("Reject the send")), ("fix", _l("Send the suggested fix"))]


_scene_validator = Regexp(
    SCENE_RE.pattern, message=_l("Lower-case letters, digits, _ . - only, e.g. order_shipped.")
)


def _lower(value: str | None) -> str | None:
    return value.strip().lower() if isinstance(value, str) else value


_page_validator = Regexp(r"^[^\s]*$", message=_l("A page path has no spaces, e.g. pages/order/detail?id=42."))


class ManualTemplateForm(FlaskForm):
    template_id = StringField(
        _l("Template ID"),
        validators=[
            DataRequired(),
            Regexp(TEMPLATE_ID_RE.pattern, message=_l("Letters, digits, - and _ only, as WeChat shows it.")),
        ],
    )
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=100)])
    kind = SelectField(_l("Type"), choices=kind_choices, default="one_time")
    content = TextAreaField(_l("Content"), validators=[DataRequired(), Length(max=2000)])
    example = TextAreaField(_l("Example (optional)"), validators=[Optional(), Length(max=2000)])
    scene = StringField(
        _l("Business scene (optional)"),
        filters=[_lower],
        validators=[Optional(), Length(max=64), _scene_validator],
    )

    def validate_content(self, field):
        if not parse_content(normalise_content(field.data)):
            raise ValidationError(
                _l("No keyword placeholder found: the content must contain e.g. {{thing1.DATA}}.")
            )


class KeywordForm(Form):
    """One keyword's editable part (key and type come from the template, never from the form)."""

    label = StringField(_l("Label"), validators=[Length(max=40)])
    enum_values = TextAreaField(_l("Allowed values"), validators=[Length(max=2000)])
    default = StringField(_l("Default value"), validators=[Length(max=200)])
    fit = SelectField(_l("When a value breaks the rule"), choices=fit_choices, default="reject")


class TemplateEditForm(FlaskForm):
    page = StringField(_l("Default page"), validators=[Length(max=512), _page_validator])
    miniprogram_state = SelectField(_l("Mini-program version"), choices=state_choices)
    lang = SelectField(_l("Language of the card"), choices=lang_choices)
    enabled = BooleanField(_l("Enabled"))
    scene = StringField(
        _l("Business scene"), filters=[_lower], validators=[Optional(), Length(max=64), _scene_validator]
    )
    credit_budget = IntegerField(
        _l("Credit budget"), default=0, validators=[InputRequired(), NumberRange(min=0, max=100)]
    )
    keywords = FieldList(FormField(KeywordForm), min_entries=0)


class PreviewForm(FlaskForm):
    """The preview's and test send's fixed fields; keyword values travel as ``kw_<key>``.

    No CSRF field of its own: the preview is a GET, and the test send's POST is checked by
    CSRFProtect (token in the htmx header or the form).
    """

    class Meta:
        csrf = False

    lang = SelectField(_l("Language of the card"), choices=lang_choices)
    miniprogram_state = SelectField(_l("Mini-program version"), choices=state_choices)
    page = StringField(_l("Page"), validators=[Length(max=512), _page_validator])
    openid = StringField(
        _l("Send a test to (openid)"),
        validators=[
            Optional(),
            Regexp(r"^[A-Za-z0-9_-]{1,64}$", message=_l("An openid has letters, digits, - and _ only.")),
        ],
    )


class LibraryAddForm(FlaskForm):
    kid1 = SelectField(_l("Keyword 1"), validators=[DataRequired()])
    kid2 = SelectField(_l("Keyword 2"), validators=[DataRequired()])
    kid3 = SelectField(_l("Keyword 3"), validators=[Optional()])
    kid4 = SelectField(_l("Keyword 4"), validators=[Optional()])
    kid5 = SelectField(_l("Keyword 5"), validators=[Optional()])
    scene_desc = StringField(
        _l("Scene description"),
        validators=[Length(max=SCENE_DESC_MAX, message=_l("At most 15 characters."))],
    )

    SLOTS = ("kid1", "kid2", "kid3", "kid4", "kid5")

    def set_keywords(self, keywords) -> None:
        choices = [("", "—")] + [(str(k.kid), f"{k.name} ({k.rule})") for k in keywords]
        for name in self.SLOTS:
            self[name].choices = choices

    def chosen(self) -> list[int]:
        return [int(self[name].data) for name in self.SLOTS if self[name].data]

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        kids = [self[name].data for name in self.SLOTS if self[name].data]
        if len(set(kids)) != len(kids):
            self.kid1.errors.append(_l("Each keyword can be picked once."))
            return False
        return True


class DeleteForm(FlaskForm):
    at_wechat = BooleanField(_l("Also delete it in WeChat (deltemplate)"))
    # Checked by the view, not by a validator: an unticked box is answered with a message, not a 400.
    confirm = BooleanField(_l("I understand, delete this template"))
