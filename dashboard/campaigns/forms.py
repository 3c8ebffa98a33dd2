"""The compose form: a campaign's fields as a marketer types them, turned into what
``services.create_campaign`` / ``update_campaign`` take (the same fields the API's ``parse_body`` makes).

The keyword values are not WTForms fields: their number and names follow the chosen template, so they
are read from the posted form by :func:`keyword_entries` (``source-<key>``, ``value-<key>``,
``fallback-<key>``) and checked by the service, which names a bad keyword in ``CampaignError.field``.
The Official Account template's values are read the same way with the prefix ``oa-``
(:func:`oa_keyword_entries`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..catalog.forms import lang_choices, state_choices
from ..models import Channel
from ..models.campaign import DEFAULT_QUIET_END, DEFAULT_QUIET_START, Campaign
from ..models.catalog import MessageTemplate
from ..models.oa_template import OaTemplate
from . import recurring, values

NAME_MAX = 120
VALUE_MAX = 512
MAX_RATE = 10_000
# Where a keyword's value comes from, as the form offers it.
SOURCE_DEFAULT, SOURCE_TEXT, SOURCE_VARIABLES = "default", "text", "variables"
SOURCES = (SOURCE_DEFAULT, SOURCE_TEXT, SOURCE_VARIABLES)
# Fields a paused campaign may still change (``states.EDITABLE_FIELDS``), as form fields.
PAUSED_FORM_FIELDS = ("rate_per_second",)
FORM_FIELDS = (
    "name",
    "channel",
    "template_id",
    "oa_template_id",
    "segment_id",
    "page",
    "miniprogram_state",
    "lang",
    "when",
    "scheduled_at",
    "quiet_hours",
    "quiet_start",
    "quiet_end",
    "rate_per_second",
    "repeat",
    "repeat_time",
    "weekdays",
    "day",
    "cron",
)
WEEKDAYS = (
    (1, _l("Mon")),
    (2, _l("Tue")),
    (3, _l("Wed")),
    (4, _l("Thu")),
    (5, _l("Fri")),
    (6, _l("Sat")),
    (7, _l("Sun")),
)
REPEAT_CHOICES = (
    ("daily", _l("Every day")),
    ("weekly", _l("On given weekdays")),
    ("monthly", _l("On a day of the month")),
    ("cron", _l("By a cron expression")),
)
# Why the schedule cannot be used (``recurring.BadSchedule.code``), in the operator's language.
SCHEDULE_PROBLEMS = {
    "invalid": _l(
        "Cron cannot read this: give five fields, minute hour day-of-month month weekday (e.g. 30 8 * * 1-5)."
    ),
    "never": _l("This schedule never occurs."),
    "too_often": _l("A campaign may repeat at most once an hour."),
}
DEFAULT_REPEAT_TIME = time(9, 0)
# The channel a campaign's messages ask for (``models.delivery.Channel``), as the form offers it.
CHANNEL_CHOICES = (
    (Channel.mp_subscribe.value, _l("Subscribe message (mini-program)")),
    (Channel.oa_template.value, _l("Official Account template message")),
    (Channel.mp_subscribe_or_oa.value, _l("Subscribe message, else Official Account")),
)
OA_PREFIX = "oa-"  # the form names of the Official Account template's values


def zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("TIMEZONE") or "Asia/Shanghai")


def to_utc(local: datetime) -> datetime:
    """A wall-clock time typed in the operator's zone, as the aware UTC instant it names."""
    return local.replace(tzinfo=zone()).astimezone(UTC)


def to_local(moment: datetime) -> datetime:
    """An aware (or UTC-naive) instant as the operator's wall clock, without zone, for the input."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone()).replace(tzinfo=None)


class ChannelFields:
    """The channel and the Official Account template, shared by the campaign and the reminder forms."""

    channel = RadioField(
        _l("Channel"),
        choices=[SelectChoice(value, label) for value, label in CHANNEL_CHOICES],
        default=Channel.mp_subscribe.value,
    )
    oa_template_id = SelectField(_l("Official Account template"), validators=[Optional()])

    def uses_oa(self) -> bool:
        return self.channel.data != Channel.mp_subscribe.value

    def uses_mp(self) -> bool:
        return self.channel.data != Channel.oa_template.value

    def validate_oa_template_id(self, field) -> None:
        if self.uses_oa() and not field.data:
            raise ValidationError(_l("Choose the Official Account template."))


class ComposeForm(ChannelFields, FlaskForm):
    name = StringField(_l("Campaign name"), validators=[DataRequired(), Length(max=NAME_MAX)])
    template_id = SelectField(_l("Template"), validators=[DataRequired()])
    segment_id = SelectField(_l("Segment"), coerce=int, validators=[DataRequired()])
    page = StringField(
        _l("Page"),
        validators=[
            Optional(),
            Length(max=512),
            Regexp(r"^[^\s]*$", message=_l("A page path has no spaces, e.g. pages/order/detail?id=42.")),
        ],
    )
    miniprogram_state = SelectField(
        _l("Mini-program version"), choices=lambda: [SelectChoice(v, label) for v, label in state_choices()]
    )
    lang = SelectField(
        _l("Language of the card"), choices=lambda: [SelectChoice(v, label) for v, label in lang_choices()]
    )
    when = RadioField(
        _l("When"),
        choices=[
            SelectChoice("now", _l("Send when launched")),
            SelectChoice("schedule", _l("Schedule at")),
            SelectChoice("repeat", _l("Repeat")),
        ],
        default="now",
    )
    repeat = SelectField(
        _l("Repeats"),
        choices=[SelectChoice(value, label) for value, label in REPEAT_CHOICES],
        default="daily",
    )
    repeat_time = TimeField(_l("At"), default=DEFAULT_REPEAT_TIME, validators=[Optional()])
    weekdays = SelectMultipleField(
        _l("Weekdays"),
        coerce=int,
        choices=[SelectChoice(value, label) for value, label in WEEKDAYS],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[Optional()],
    )
    day = IntegerField(_l("Day of the month"), validators=[Optional(), NumberRange(1, 31)])
    cron = StringField(_l("Cron expression"), validators=[Optional(), Length(max=recurring.CRON_MAX)])
    scheduled_at = DateTimeLocalField(_l("Time"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    quiet_hours = BooleanField(_l("Hold sending during quiet hours"))
    quiet_start = TimeField(_l("Quiet from"), default=DEFAULT_QUIET_START, validators=[Optional()])
    quiet_end = TimeField(_l("Quiet until"), default=DEFAULT_QUIET_END, validators=[Optional()])
    rate_per_second = IntegerField(
        _l("Own rate (messages per second, optional)"),
        validators=[Optional(), NumberRange(1, MAX_RATE)],
    )

    schedule_locked = False  # a paused campaign keeps its schedule: it is not judged again

    def validate_scheduled_at(self, field) -> None:
        if self.when.data != "schedule" or self.schedule_locked:
            return
        if field.data is None:
            raise ValidationError(_l("Give the time to send at."))
        if to_utc(field.data) <= datetime.now(UTC):
            raise ValidationError(_l("This time has passed: choose a time ahead, or send when launched."))

    def _repeating(self) -> bool:
        return self.when.data == "repeat" and not self.schedule_locked

    def validate(self, extra_validators=None) -> bool:
        """The fields' own checks, then the repeat's: its optional fields are required by the repeat
        chosen (an ``Optional`` validator stops the chain, so these cannot be inline validators)."""
        valid = super().validate(extra_validators)
        if not self._repeating():
            return valid
        problems: list[tuple[Any, Any]] = []
        repeat = self.repeat.data
        if repeat != "cron" and self.repeat_time.data is None and not self.repeat_time.errors:
            problems.append((self.repeat_time, _l("Give the time of day to send at.")))
        if repeat == "weekly" and not self.weekdays.data and not self.weekdays.errors:
            problems.append((self.weekdays, _l("Tick at least one weekday.")))
        if repeat == "monthly" and self.day.data is None and not self.day.errors:
            problems.append((self.day, _l("Give the day of the month, 1 to 31.")))
        if repeat == "cron" and not self.cron.errors:
            if not (self.cron.data or "").strip():
                problems.append((self.cron, _l("Give a cron expression.")))
            else:
                try:
                    schedule = recurring.parse_schedule({"repeat": "cron", "cron": self.cron.data})
                    recurring.check(schedule, str(zone()), datetime.now(UTC))
                except recurring.BadSchedule as bad:
                    problems.append(
                        (self.cron, SCHEDULE_PROBLEMS.get(bad.code, SCHEDULE_PROBLEMS["invalid"]))
                    )
        for field, message in problems:
            field.errors = [*field.errors, message]
        return valid and not problems

    def schedule(self) -> dict[str, Any] | None:
        """The recurring schedule chosen, in ``recurring.parse_schedule``'s shape (None: not repeating)."""
        if self.when.data != "repeat":
            return None
        repeat = self.repeat.data if self.repeat.data in recurring.REPEATS else "daily"
        if repeat == "cron":
            return recurring.parse_schedule({"repeat": "cron", "cron": self.cron.data or ""})
        raw: dict[str, Any] = {
            "repeat": repeat,
            "time": (self.repeat_time.data or DEFAULT_REPEAT_TIME).strftime("%H:%M"),
        }
        if repeat == "weekly":
            raw["weekdays"] = list(self.weekdays.data or [])
        if repeat == "monthly":
            raw["day"] = self.day.data
        return recurring.parse_schedule(raw)

    @classmethod
    def for_campaign(cls, campaign: Campaign) -> ComposeForm:
        """The form filled from a saved campaign (times shown in the operator's zone)."""
        return cls(
            formdata=None,
            data={
                "name": campaign.name,
                "channel": campaign.channel,
                "template_id": campaign.template_id,
                "oa_template_id": campaign.oa_template_id or "",
                "segment_id": campaign.segment_id,
                "page": campaign.page or "",
                "miniprogram_state": campaign.miniprogram_state,
                "lang": campaign.lang,
                "when": "repeat" if campaign.schedule else "schedule" if campaign.scheduled_at else "now",
                "scheduled_at": to_local(campaign.scheduled_at) if campaign.scheduled_at else None,
                "quiet_hours": campaign.has_quiet_hours,
                "quiet_start": campaign.quiet_start or DEFAULT_QUIET_START,
                "quiet_end": campaign.quiet_end or DEFAULT_QUIET_END,
                "rate_per_second": campaign.rate_per_second,
                **_schedule_data(campaign.schedule),
            },
        )

    def campaign_fields(
        self, template: MessageTemplate, data: dict[str, Any], oa_data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Every field of a draft, as ``services.create_campaign`` and ``update_campaign`` take them. On
        the ``oa_template`` channel the mini-program template is left out (``services.uses_mp``)."""
        quiet_start = quiet_end = None
        if self.quiet_hours.data:
            quiet_start = self.quiet_start.data or DEFAULT_QUIET_START
            quiet_end = self.quiet_end.data or DEFAULT_QUIET_END
            if quiet_start == quiet_end:  # an empty window: no quiet hours (as the API reads it)
                quiet_start = quiet_end = None
        page = (self.page.data or "").strip()
        mp = self.uses_mp()
        return {
            "name": self.name.data.strip(),
            "template_id": template.template_id if mp else "",
            "segment_id": self.segment_id.data,
            "data": data if mp else {},
            "channel": self.channel.data,
            "oa_template_id": self.oa_template_id.data if self.uses_oa() else None,
            "oa_data": oa_data if self.uses_oa() else None,
            "page": page or (template.page if mp else None) or None,
            "miniprogram_state": self.miniprogram_state.data,
            "lang": self.lang.data,
            "scheduled_at": to_utc(self.scheduled_at.data)
            if self.when.data == "schedule" and self.scheduled_at.data
            else None,
            "schedule": self.schedule(),
            "rate_per_second": self.rate_per_second.data,
            "quiet_start": quiet_start,
            "quiet_end": quiet_end,
        }


def _schedule_data(schedule: Mapping[str, Any] | None) -> dict[str, Any]:
    """A saved schedule as the form's fields."""
    if not schedule:
        return {}
    clock = schedule.get("time")
    return {
        "repeat": schedule.get("repeat", "daily"),
        "repeat_time": time.fromisoformat(clock) if clock else DEFAULT_REPEAT_TIME,
        "weekdays": list(schedule.get("weekdays") or []),
        "day": schedule.get("day"),
        "cron": schedule.get("cron") or "",
    }


@dataclass
class KeywordEntry:
    """One keyword's row of the form: where its value comes from, as shown and as typed."""

    key: str
    type: str
    label: str
    default: str
    source: str
    value: str
    fallback: str
    error: str | None = None


def keyword_entries(
    template: MessageTemplate, formdata: Mapping[str, str] | None, saved: Mapping[str, Any] | None = None
) -> list[KeywordEntry]:
    """The keyword rows from a posted form, else from a campaign's saved ``data``, else the defaults."""
    return _entries(template.keyword_specs, formdata, saved, "")


def oa_keyword_entries(
    template: OaTemplate, formdata: Mapping[str, str] | None, saved: Mapping[str, Any] | None = None
) -> list[KeywordEntry]:
    """The Official Account template's rows (``oa-source-<key>`` …): the OA has no template defaults, so
    "default" is an empty value (which only ``first``, ``remark`` and ``const`` may be)."""
    return _entries(template.keywords or [], formdata, saved, OA_PREFIX)


def _entries(
    specs: list[Mapping[str, Any]],
    formdata: Mapping[str, str] | None,
    saved: Mapping[str, Any] | None,
    prefix: str,
) -> list[KeywordEntry]:
    entries = []
    for spec in specs:
        key = spec["key"]
        default = spec.get("default") or ""
        label = spec.get("label") or spec.get("content_label") or key
        if formdata is not None and f"{prefix}source-{key}" in formdata:
            source = formdata.get(f"{prefix}source-{key}") or SOURCE_DEFAULT
            source = source if source in SOURCES else SOURCE_DEFAULT
            value = (formdata.get(f"{prefix}value-{key}") or "")[:VALUE_MAX]
            fallback = (formdata.get(f"{prefix}fallback-{key}") or "")[:VALUE_MAX]
        elif saved and isinstance(saved.get(key), Mapping):
            value = str(saved[key].get("value") or "")
            fallback = str(saved[key].get("fallback") or "")
            source = SOURCE_VARIABLES if values.VARIABLE_RE.search(value) else SOURCE_TEXT
        else:
            source, value, fallback = SOURCE_DEFAULT, "", ""
        entries.append(KeywordEntry(key, spec["type"], label, default, source, value, fallback))
    return entries


def keyword_data(entries: list[KeywordEntry]) -> dict[str, dict[str, str]]:
    """The campaign's ``data`` from the rows: a keyword on its template default is left out."""
    data: dict[str, dict[str, str]] = {}
    for entry in entries:
        if entry.source == SOURCE_DEFAULT:
            continue
        item = {"value": entry.value.strip()}
        if entry.source == SOURCE_VARIABLES and entry.fallback.strip():
            item["fallback"] = entry.fallback.strip()
        data[entry.key] = item
    return data
