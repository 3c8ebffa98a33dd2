"""Composing a date reminder in the browser (``/campaigns/reminders/new``; a draft's changed at
``/campaigns/reminders/<id>/edit``, the same form prefilled): the template (chosen first: its keywords make
the steps' fields), an optional segment, the date attribute (a declared date or date-time), the local send
time and up to three steps, each an offset in days and its own values. Every check is the service's
(``services.create_campaign``, as the API's, and ``update_campaign``); the form shows its refusal next to
the field."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, StringField, TimeField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..access import requires
from ..audit.services import record
from ..extensions import db
from ..models import Role
from ..models.campaign import Campaign, CampaignState
from ..models.catalog import MessageTemplate
from ..models.oa_template import OaTemplate
from ..models.segment import Segment
from . import reminders, services
from .compose_views import _oa_templates, _template, _templates, error_words, oa_on, say
from .forms import ChannelFields
from .states import InvalidTransition, check_edit
from .views import bp

NAME_MAX = 120
VALUE_MAX = 512
DEFAULT_OFFSETS = (-7, -1, 0)
STEP_FIELD_RE = re.compile(r"^reminder\.steps\[(\d+)\](?:\.(offset_days|data|oa_data)(?:\.(.+))?)?$")
OA_STEP = "oa-"  # a step's Official Account values are s<n>-oa-<key> (and -fallback)
S = CampaignState


class ReminderForm(ChannelFields, FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=NAME_MAX)])
    template_id = StringField(validators=[DataRequired()])
    segment_id = SelectField(_l("Only users in segment"), coerce=int, default=0)
    attribute = SelectField(_l("Date attribute"), validators=[DataRequired()])
    send_time = TimeField(_l("Send at"), validators=[DataRequired()])
    offset_1 = IntegerField(_l("Step 1: days from the date"), validators=[Optional(), NumberRange(-365, 365)])
    offset_2 = IntegerField(_l("Step 2: days from the date"), validators=[Optional(), NumberRange(-365, 365)])
    offset_3 = IntegerField(_l("Step 3: days from the date"), validators=[Optional(), NumberRange(-365, 365)])

    def offsets(self) -> list[Any]:
        return [self.offset_1, self.offset_2, self.offset_3]


def _step_values(
    template: MessageTemplate | OaTemplate, form_data, prefix: str = ""
) -> list[dict[str, dict[str, str]]]:
    """Per step (1 to 3) the values typed for each keyword: ``s<n>-<key>`` and ``s<n>-<key>-fallback``
    (an Official Account template's: ``s<n>-oa-<key>``, with ``prefix`` ``OA_STEP``)."""
    specs = (template.keywords or []) if isinstance(template, OaTemplate) else template.keyword_specs
    steps = []
    for number in range(1, reminders.MAX_STEPS + 1):
        data: dict[str, dict[str, str]] = {}
        for spec in specs:
            key = spec["key"]
            value = (form_data.get(f"s{number}-{prefix}{key}") or "")[:VALUE_MAX]
            entry = {"value": value}
            fallback = (form_data.get(f"s{number}-{prefix}{key}-fallback") or "")[:VALUE_MAX]
            if fallback:
                entry["fallback"] = fallback
            data[key] = entry
        steps.append(data)
    return steps


def _default_values(template: MessageTemplate) -> list[dict[str, dict[str, str]]]:
    return [
        {spec["key"]: {"value": spec.get("default") or ""} for spec in template.keyword_specs}
        for _ in range(reminders.MAX_STEPS)
    ]


def _saved_values(
    campaign: Campaign, template: MessageTemplate | OaTemplate | None, part: str = "data"
) -> list[dict[str, dict[str, str]]]:
    """Per step (1 to 3) the campaign's own values (``part``: ``data`` or ``oa_data``) for the template's
    keywords; a keyword the saved step lacks (another template chosen) shows its default."""
    if template is None:
        return [{} for _ in range(reminders.MAX_STEPS)]
    specs = (template.keywords or []) if isinstance(template, OaTemplate) else template.keyword_specs
    steps = list(campaign.reminder.get("steps") or [])
    shown = []
    for index in range(reminders.MAX_STEPS):
        saved = (steps[index].get(part) or {}) if index < len(steps) else {}
        shown.append(
            {
                spec["key"]: dict(saved.get(spec["key"]) or {"value": spec.get("default") or ""})
                for spec in specs
            }
        )
    return shown


def _saved_form(campaign: Campaign) -> dict[str, Any]:
    """The form's fields as the campaign holds them (the steps' offsets in their order, blanks after)."""
    reminder = campaign.reminder
    offsets = [step["offset_days"] for step in reminder.get("steps") or []][: reminders.MAX_STEPS]
    offsets += [None] * (reminders.MAX_STEPS - len(offsets))
    return {
        "name": campaign.name,
        "segment_id": campaign.segment_id or 0,
        "attribute": reminder.get("attribute"),
        "send_time": datetime.strptime(reminder["time"], "%H:%M").time() if reminder.get("time") else None,
        **{f"offset_{number}": offset for number, offset in enumerate(offsets, start=1)},
    }


def _refusal(campaign: Campaign | None) -> str | None:
    """Why this reminder cannot be edited (None: it is a draft, every field may change)."""
    if campaign is None or campaign.state == S.draft:
        return None
    if campaign.state == S.paused:  # the compose page's "only its values" does not apply: this form is whole
        return say("The campaign is paused. Only a draft can be edited.")
    try:
        check_edit(campaign, {"reminder"})
    except InvalidTransition as refused:
        return say(refused.message)
    return None


def _page(form: ReminderForm, template, templates, values_, status: int = 200, **extra):
    oa_template = extra.pop("oa_template", None)
    campaign = extra.get("campaign")
    context = {
        "form": form,
        "campaign": None,
        "template": template,
        "templates": templates,
        "step_values": values_,
        "oa_on": oa_on(),
        "oa_templates": _oa_templates(campaign.oa_template_id if campaign else None),
        "oa_template": oa_template,
        "oa_step_values": extra.pop("oa_values", None) or [{} for _ in range(reminders.MAX_STEPS)],
        "locked": set(),
        "errors": extra.pop("errors", {}),
        "refusal": _refusal(campaign),
        "timezone": current_app.config.get("TIMEZONE") or "Asia/Shanghai",
        **extra,
    }
    return make_response(render_template("campaigns/reminder_new.html", **context), status)


def _apply_error(form: ReminderForm, error: services.CampaignError, template) -> tuple[dict, str | None]:
    """The service's refusal next to its field: ``errors`` keyed ``s<n>-<key>`` for keyword values; the
    sentence when no field shows it."""
    field = error.field or ""
    labels = {spec["key"]: spec.get("label") or spec["key"] for spec in template.keyword_specs}
    step = STEP_FIELD_RE.match(field)
    if step:
        number = int(step.group(1)) + 1
        if step.group(2) in ("data", "oa_data") and step.group(3):
            key = step.group(3)
            words = error_words(services.CampaignError(422, error.code, error.message, f"data.{key}"), labels)
            prefix = OA_STEP if step.group(2) == "oa_data" else ""
            return {f"s{number}-{prefix}{key}": words}, None
        if step.group(2) == "offset_days" and 1 <= number <= reminders.MAX_STEPS:
            target = form.offsets()[number - 1]
            target.errors = [*target.errors, _("Give each step its own day, -365 to 365.")]
            return {}, None
    if field == "reminder.steps":
        return {}, _("Give one to three steps: a number of days from the date for each.")
    if field == "reminder.attribute":
        form.attribute.errors = [*form.attribute.errors, _("Choose a declared date attribute.")]
        return {}, None
    if field == "reminder.time":
        form.send_time.errors = [*form.send_time.errors, _("Give the time of day to send at.")]
        return {}, None
    if field in ("channel", "oa_template_id"):
        form[field].errors = [*form[field].errors, error_words(error, labels)]
        return {}, None
    return {}, error_words(error, labels)


def _form_error(form: ReminderForm, error: services.CampaignError, template) -> tuple[dict, str | None]:
    """``_apply_error`` with the service's step number turned into the form's: the service numbers the
    steps given, the form's fields are numbered 1 to 3 with blanks skipped."""
    numbers = [index for index, field in enumerate(form.offsets()) if field.data is not None]
    step = STEP_FIELD_RE.match(error.field or "")
    if step and int(step.group(1)) < len(numbers):
        real = numbers[int(step.group(1))]
        error.field = (error.field or "").replace(f"[{step.group(1)}]", f"[{real}]", 1)
    return _apply_error(form, error, template)


def _choices(form: ReminderForm, campaign: Campaign | None):
    """Fill the form's choices; the templates shown, the one chosen (the query's or the posted one, else
    the campaign's, else the first) and the Official Account template chosen likewise."""
    current = campaign.template_id if campaign else None
    templates = _templates(current)
    template = _template(request.values.get("template_id") or current, templates)
    form.segment_id.choices = [SelectChoice(0, _("All users with the date"))] + [
        SelectChoice(s.id, s.name) for s in db.session.scalars(sa.select(Segment).order_by(Segment.name))
    ]
    form.attribute.choices = [
        SelectChoice(a.key, f"{a.label} · {a.key}") for a in reminders.date_attributes()
    ]
    oa_current = campaign.oa_template_id if campaign else None
    oa_choices = _oa_templates(oa_current)
    form.oa_template_id.choices = [SelectChoice(t.template_id, t.title) for t in oa_choices]
    oa_template = _template(request.values.get("oa_template_id") or oa_current, oa_choices)
    return templates, template, oa_template


def _fields(form: ReminderForm, template: MessageTemplate, typed, oa_typed) -> dict[str, Any]:
    """The campaign's fields as ``services.create_campaign`` (and ``update_campaign``) take them."""
    steps = [
        {"offset_days": field.data, "data": typed[index] if form.uses_mp() else {}}
        | ({"oa_data": oa_typed[index]} if form.uses_oa() and oa_typed is not None else {})
        for index, field in enumerate(form.offsets())
        if field.data is not None
    ]
    return {
        "name": form.name.data.strip(),
        "template_id": template.template_id if form.uses_mp() else "",
        "channel": form.channel.data,
        "oa_template_id": form.oa_template_id.data if form.uses_oa() else None,
        "segment_id": form.segment_id.data or None,
        "reminder": {
            "attribute": form.attribute.data,
            "time": form.send_time.data.strftime("%H:%M"),
            "steps": steps,
        },
    }


def _compose(campaign: Campaign | None):
    """The reminder's form: a new one (``campaign`` None) or a draft's, prefilled from it; saved through
    the service, its refusals next to their fields."""
    if campaign is not None and request.method == "GET":
        form = ReminderForm(data=_saved_form(campaign))
    else:
        form = ReminderForm()
    templates, template, oa_template = _choices(form, campaign)
    if request.method == "GET":
        form.channel.data = request.args.get("channel") or (campaign.channel if campaign else "mp_subscribe")
        form.oa_template_id.data = oa_template.template_id if oa_template else None
    if not oa_on():
        form.channel.data = "mp_subscribe"
    if template is None:
        return _page(
            form,
            None,
            templates,
            [],
            campaign=campaign,
            problem=_("No template can be used: add or enable one in Templates first."),
        )
    if not form.attribute.choices:
        return _page(
            form,
            template,
            templates,
            [],
            campaign=campaign,
            problem=_("No date attribute is declared: declare one in Settings → User attributes first."),
        )
    if request.method == "GET":
        form.template_id.data = template.template_id
        if campaign is not None:
            shown = _saved_values(campaign, template)
            oa_shown = _saved_values(campaign, oa_template, "oa_data")
            return _page(
                form,
                template,
                templates,
                shown,
                oa_template=oa_template,
                oa_values=oa_shown,
                campaign=campaign,
            )
        form.send_time.data = form.send_time.data or time(9, 0)
        for field, offset in zip(form.offsets(), DEFAULT_OFFSETS, strict=True):
            field.data = offset
        return _page(form, template, templates, _default_values(template), oa_template=oa_template)
    typed = _step_values(template, request.form)
    oa_typed = _step_values(oa_template, request.form, OA_STEP) if oa_template is not None else None
    shown = {"oa_template": oa_template, "oa_values": oa_typed, "campaign": campaign}
    if _refusal(campaign):  # nothing is saved: the page says why
        return _page(form, template, templates, typed, status=409, **shown)
    if not form.validate():
        return _page(form, template, templates, typed, status=422, **shown)
    fields = _fields(form, template, typed, oa_typed)
    try:
        if campaign is None:
            campaign = services.create_campaign(fields, created_by_id=current_user.id)
        else:
            services.update_campaign(campaign, fields)
    except services.CampaignError as error:
        db.session.rollback()
        errors, problem = _form_error(form, error, template)
        return _page(form, template, templates, typed, status=422, errors=errors, problem=problem, **shown)
    except InvalidTransition as refused:  # the state changed since the page was shown
        db.session.rollback()
        shown["campaign"] = db.session.get(Campaign, campaign.id, populate_existing=True)
        return _page(form, template, templates, typed, status=409, problem=say(refused.message), **shown)
    if shown["campaign"] is None:  # a new one
        record("campaign.created", campaign, template_id=campaign.template_id, segment_id=campaign.segment_id)
        message = _("Reminder saved. Launch it to start sending every day.")
    else:
        record("campaign.edited", campaign, fields=sorted(fields))
        message = _("Reminder changes saved.")
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign.id))


@bp.route("/reminders/new", methods=("GET", "POST"))
@requires(Role.marketer)
def new_reminder():
    return _compose(None)


@bp.route("/reminders/<int:campaign_id>/edit", methods=("GET", "POST"))
@requires(Role.marketer)
def edit_reminder(campaign_id: int):
    """A draft reminder's form, prefilled; any other state shows why it cannot change."""
    campaign = db.get_or_404(Campaign, campaign_id)
    if not campaign.is_reminder:  # a campaign of one send (or a recurring one) is edited on its own page
        return redirect(url_for("campaign_compose.edit", campaign_id=campaign.id), 303)
    return _compose(campaign)
