"""Composing campaigns in the browser: new, edit, the card for a sample user, the dry run, test sends
and duplicates. Every check is the service's (``services.create_campaign`` / ``update_campaign``, the
same as the API's): the form only reads what was typed and shows the service's answer next to the
field it names."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from wtforms import SelectChoice

from ..access import requires
from ..audience.reach import reach_by_channel
from ..audit.services import record
from ..catalog.views import SKIP_REASONS, TEST_SEND_OUTCOMES
from ..config import oa_configured
from ..deliveries.opens import CAMPAIGN_PAGE_MAX_LENGTH
from ..dispatch.limits import current_limits
from ..extensions import db
from ..forms import EmptyForm
from ..htmx import is_htmx
from ..labels import reason_label
from ..models import DeliveryState, Role, WechatUser
from ..models.campaign import Campaign, CampaignState
from ..models.catalog import Drift, MessageTemplate
from ..models.oa_template import OaTemplate
from ..models.segment import Segment
from ..models.types import utcnow
from ..oa import templates as oa_templates
from ..wechat.errors import category_for
from . import compose, dry_run, services, values
from .forms import (
    FORM_FIELDS,
    PAUSED_FORM_FIELDS,
    ComposeForm,
    KeywordEntry,
    keyword_data,
    keyword_entries,
    oa_keyword_entries,
)
from .states import InvalidTransition, check_edit

bp = Blueprint("campaign_compose", __name__)
S = CampaignState
OPENID_SPLIT = re.compile(r"[\s,，;；]+")
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
AnyTemplate = TypeVar("AnyTemplate", MessageTemplate, OaTemplate)

# The sentences of ``states.py``'s refusals, translated one by one (the message itself stays the one
# the state machine gives, so the page and the API say the same thing).
STATE_SENTENCES = {
    "The campaign is already running.": _l("The campaign is already running."),
    "The campaign is already scheduled.": _l("The campaign is already scheduled."),
    "The campaign is paused.": _l("The campaign is paused."),
    "The campaign has completed.": _l("The campaign has completed."),
    "The campaign was cancelled.": _l("The campaign was cancelled."),
    "The campaign is still a draft and has not been launched.": _l(
        "The campaign is still a draft and has not been launched."
    ),
    "Only a draft can be edited.": _l("Only a draft can be edited."),
    "A paused campaign may change only its values and its rate; its template, segment and schedule were "
    "fixed when it started.": _l(
        "A paused campaign may change only its values and its rate; its template, segment and schedule "
        "were fixed when it started."
    ),
    "The campaign changed state meanwhile: look again before editing.": _l(
        "The campaign changed state meanwhile: look again before editing."
    ),
}
CATEGORY_WORDS = {
    "token": _l("the access token was refused"),
    "transient": _l("WeChat is busy: try again later"),
    "quota": _l("the daily sending quota is used up"),
    "no_grant": _l("the user holds no subscription for this template"),
    "recipient": _l("the openid is not a user of this mini program"),
    "template": _l("the template is invalid or was deleted"),
    "content": _l("a value breaks its keyword's rule"),
    "page": _l("the page is not in the released mini program"),
    "config": _l("the WeChat settings need an admin"),
    "unknown": _l("the answer was lost"),
    "other": _l("an error Tongzhi does not know"),
}


def _locale() -> str:
    locale = get_locale()
    return locale.language if locale else "en"


def say(message: str) -> str:
    """A refusal of the state machine in the operator's language, sentence by sentence."""
    sentences = re.split(r"(?<=[.])\s+(?=[A-Z])", message.strip())
    joiner = "" if _locale() == "zh" else " "  # Chinese sentences end in 。 and need no space
    return joiner.join(str(STATE_SENTENCES.get(sentence, sentence)) for sentence in sentences)


def preview_words(result: compose.SamplePreview, template) -> compose.SamplePreview:
    """The preview's problem in the operator's language, the keyword named (as the form says it)."""
    if not result.problem or not result.problem_key:
        return result
    labels = {spec["key"]: spec.get("label") or spec["key"] for spec in template.keyword_specs}
    error = services.CampaignError(422, "invalid_value", result.problem, f"data.{result.problem_key}")
    return dataclasses.replace(result, problem=error_words(error, labels))


def error_words(error: services.CampaignError, labels: dict[str, str]) -> str:
    """The service's refusal for a person: the keyword named, the sentence translated."""
    field = error.field or ""
    if field.startswith(("data.", "oa_data.")):
        key = field.split(".", 1)[1]
        name = f"{labels.get(key, key)} ({key})" if key in labels else key
        text = error.message.split(": ", 1)[-1]
        breaks = re.match(r"^(['\"])(.*)\1 breaks the rule of a (\w+) keyword\.$", text, re.S)
        if breaks:
            return _(
                "%(keyword)s: “%(value)s” breaks the rule of a %(type)s keyword, for every recipient.",
                keyword=name,
                value=breaks.group(2),
                type=breaks.group(3),
            )
        variable = re.match(r"^there is no user variable (.+)\.$", text)
        if variable:
            return _(
                "%(keyword)s: there is no user variable %(variable)s.",
                keyword=name,
                variable=variable.group(1),
            )
        return _("%(keyword)s: %(problem)s", keyword=name, problem=text)
    if field == "page":
        return _(
            "Tongzhi adds tz= to a campaign's page to count opens: the page may have at most %(n)d characters and no tz= of its own.",
            n=CAMPAIGN_PAGE_MAX_LENGTH,
        )
    if error.code == "unknown_segment":
        return _("This segment no longer exists.")
    if error.code == "unknown_template":
        return _("This template is not in the catalog.")
    if error.code.startswith("template_"):
        return _("The template cannot be used now: it is disabled, removed or changed in WeChat.")
    if error.code == "oa_off":
        return _("The Official Account channel is off: only the subscribe message can be sent.")
    if error.code == "unknown_oa_template":
        return _("This Official Account template is not in the catalog: sync the templates.")
    if error.code.startswith("oa_template_"):
        return _(
            "The Official Account template cannot be used now: it is removed or changed in WeChat (review it in Templates → Official Account)."
        )
    return error.message


# -- the page ------------------------------------------------------------------------------------------


def _templates(current: str | None = None) -> list[MessageTemplate]:
    """Templates a campaign may use (enabled, not removed), and the campaign's own even if it is not."""
    query = sa.select(MessageTemplate).order_by(MessageTemplate.title)
    return [
        t
        for t in db.session.scalars(query)
        if (t.enabled and t.drift is not Drift.removed) or t.template_id == current
    ]


def _oa_templates(current: str | None = None) -> list[OaTemplate]:
    """The Official Account templates a campaign may use (not removed), and the campaign's own."""
    query = sa.select(OaTemplate).order_by(OaTemplate.title)
    return [t for t in db.session.scalars(query) if not t.is_removed or t.template_id == current]


def oa_on() -> bool:
    return oa_configured(current_app.config)


def oa_entry_errors(template: OaTemplate, entries: list[KeywordEntry]) -> bool:
    """Each Official Account value that breaks the OA's rules for every recipient (fixed text, or the
    fallback of text with variables) marked on its row, in the operator's language, by the OA catalog's
    checker (``oa.templates.build_preview``); True when one does. Values with user variables are judged
    per user at launch (a user whose value breaks a rule is skipped)."""
    data = keyword_data(entries)
    fixed: dict[str, str] = {}
    for entry in entries:
        item = data.get(entry.key, {"value": ""})
        text = item["value"] if not values.VARIABLE_RE.search(item["value"]) else item.get("fallback")
        if text is not None:
            fixed[entry.key] = text
    checks = oa_templates.build_preview(template, fixed).checks
    found = False
    for entry in entries:
        check = checks.get(entry.key)
        if entry.key in fixed and check is not None and check.errors:
            entry.error = check.errors[0].message(_locale())
            found = True
    return found


def _oa_values_refused(form: ComposeForm, oa: dict[str, Any]) -> bool:
    """The campaign sends the Official Account's message and a value of it breaks the OA's rules for
    every recipient (marked on its row by ``oa_entry_errors``)."""
    return (
        form.uses_oa()
        and oa["oa_template"] is not None
        and oa_entry_errors(oa["oa_template"], oa["oa_entries"])
    )


def _template(template_id: str | None, choices: list[AnyTemplate]) -> AnyTemplate | None:
    """The template of this id among the choices (a subscribe template or an Official Account's), else
    the first one."""
    return next((t for t in choices if t.template_id == template_id), choices[0] if choices else None)


_oa_template = _template  # the name ``reminder_form`` imports it by


def _prepare(form: ComposeForm, campaign: Campaign | None) -> list[MessageTemplate]:
    templates = _templates(campaign.template_id if campaign else None)
    form.template_id.choices = [
        SelectChoice(t.template_id, f"{t.title} · {t.template_id}") for t in templates
    ]
    oa_choices = _oa_templates(campaign.oa_template_id if campaign else None)
    form.oa_template_id.choices = [
        SelectChoice(t.template_id, f"{t.title} · {t.template_id}") for t in oa_choices
    ]
    if not oa_on():
        # The channel is off: the campaign keeps the channel it has (a new one: the subscribe message).
        form.channel.data = campaign.channel if campaign else "mp_subscribe"
    form.segment_id.choices = [
        SelectChoice(s.id, s.name) for s in db.session.scalars(sa.select(Segment).order_by(Segment.name))
    ]
    return templates


def _locked_fields(campaign: Campaign | None) -> set[str]:
    """Form fields shown but not editable: a paused campaign changes only its values and rate."""
    if campaign is None or campaign.state == S.draft:
        return set()
    return set(FORM_FIELDS) - set(PAUSED_FORM_FIELDS)


def _refusal(campaign: Campaign | None) -> str | None:
    """Why this campaign cannot be edited at all (None when it can, wholly or its values)."""
    if campaign is None or campaign.state in (S.draft, S.paused):
        return None
    try:
        check_edit(campaign, {"data"})
    except InvalidTransition as refused:
        return say(refused.message)
    return None


def _not_for_reminders(campaign: Campaign):
    """A date reminder is set up on its own form (``reminder_form``): this module's pages (edit, copy, dry
    run, test send) know one set of values and a segment, not steps, so they refuse it and say where to go."""
    if not campaign.is_reminder:
        return None
    message = _("A date reminder is not copied, dry-run or test-sent here: its steps are on its page.")
    if is_htmx():
        return Markup('<p class="error" role="alert">%s</p>') % message
    flash(message, "error")
    return redirect(url_for("campaigns.detail", campaign_id=campaign.id), 303)


def _oa_parts(form: ComposeForm, campaign: Campaign | None, formdata) -> dict[str, Any]:
    """The Official Account template chosen and its value rows (from the form, else the campaign's)."""
    choices = _oa_templates(campaign.oa_template_id if campaign else None)
    chosen = _template(form.oa_template_id.data, choices)
    saved = campaign.oa_data if campaign else None
    return {
        "oa_template": chosen,
        "oa_entries": oa_keyword_entries(chosen, formdata, saved) if chosen else [],
    }


def _reach(segment: Segment | None, template: MessageTemplate | None) -> dict[str, int] | None:
    """The segment's users each channel could message now, for the chosen template (``audience.reach``)."""
    if segment is None:
        return None
    return reach_by_channel(segment.filter, template.template_id if template else "", utcnow())


def _page(
    form: ComposeForm, campaign: Campaign | None, templates, entries, status: int = 200, oa=None, **extra
):
    template = _template(form.template_id.data, templates)
    segment = db.session.get(Segment, form.segment_id.data) if form.segment_id.data else None
    sample = compose.sample(segment)
    oa = oa if oa is not None else _oa_parts(form, campaign, None)
    user = compose.user_mapping(sample[0]) if sample else compose.user_mapping(None)
    preview = oa_preview = None
    if template is not None and entries is not None and form.uses_mp():
        preview = compose.preview_for(template, keyword_data(entries), user, form.lang.data or "zh_CN")
        preview = preview_words(preview, template)
    if oa["oa_template"] is not None and form.uses_oa():
        oa_preview = compose.oa_preview_for(oa["oa_template"], keyword_data(oa["oa_entries"]), user)
    paused = campaign is not None and campaign.state == S.paused
    context: dict[str, Any] = {
        "form": form,
        "campaign": campaign,
        "template": template,
        "entries": entries or [],
        **oa,
        "oa_on": oa_on(),
        "oa_preview": oa_preview,
        "reach": _reach(segment, template),
        "locked": _locked_fields(campaign),
        "paused_note": say(
            "A paused campaign may change only its values and its rate; its template, segment and schedule "
            "were fixed when it started."
        )
        if paused
        else None,
        "refusal": _refusal(campaign),
        "timezone": current_app.config.get("TIMEZONE") or "Asia/Shanghai",
        "global_rate": current_limits().rate_per_second,
        "sample": sample,
        "chosen": sample[0].openid if sample else "",
        "sample_preview": preview,
        "action_form": EmptyForm(),
        "locale": _locale(),
        **extra,
    }
    response = make_response(render_template("campaigns/compose.html", **context), status)
    return response


def _apply_errors(
    form: ComposeForm, entries, error: services.CampaignError, template, oa_entries=()
) -> str | None:
    """Put the service's refusal next to the field it names; returns it when no field shows it."""
    labels = {spec["key"]: spec.get("label") or spec["key"] for spec in template.keyword_specs}
    labels |= {e.key: e.label for e in oa_entries} if (error.field or "").startswith("oa_data.") else {}
    words = error_words(error, labels)
    field = error.field or ""
    if field.startswith(("data.", "oa_data.")):
        key = field.split(".", 1)[1]
        for entry in oa_entries if field.startswith("oa_data.") else entries:
            if entry.key == key:
                entry.error = words
                return None
        return words
    if field.startswith("schedule"):
        # The form judges the schedule first; the service's refusal lands here only if it changed meanwhile.
        words = _("This schedule cannot be used: check its fields.")
    target = {
        "template_id": form.template_id,
        "segment_id": form.segment_id,
        "page": form.page,
        "schedule": form.repeat,
        "schedule.cron": form.cron,
        "schedule.time": form.repeat_time,
        "schedule.weekdays": form.weekdays,
        "schedule.day": form.day,
        "scheduled_at": form.scheduled_at,
        "channel": form.channel,
        "oa_template_id": form.oa_template_id,
    }.get(field)
    if target is not None:
        target.errors = [*target.errors, words]
        return None
    return words


@bp.route("/new", methods=("GET", "POST"))
@requires(Role.marketer)
def new():
    form = ComposeForm()
    templates = _prepare(form, None)
    if request.method == "GET":
        if templates and not form.template_id.data:
            form.template_id.data = templates[0].template_id
        if form.segment_id.choices and not form.segment_id.data:
            form.segment_id.data = form.segment_id.choices[0].value
    template = _template(form.template_id.data, templates)
    entries = (
        keyword_entries(template, request.form if request.method == "POST" else None) if template else None
    )
    if not templates:
        return _page(
            form,
            None,
            templates,
            entries,
            problem=_("No template can be used: add or enable one in Templates first."),
        )
    oa = _oa_parts(form, None, request.form if request.method == "POST" else None)
    if request.method == "GET" or not form.validate():
        return _page(form, None, templates, entries, oa=oa)
    if _oa_values_refused(form, oa):
        return _page(form, None, templates, entries, status=422, oa=oa)
    try:
        campaign = services.create_campaign(
            form.campaign_fields(template, keyword_data(entries), keyword_data(oa["oa_entries"])),
            created_by_id=current_user.id,
        )
    except services.CampaignError as error:
        db.session.rollback()
        problem = _apply_errors(form, entries, error, template, oa["oa_entries"])
        return _page(form, None, templates, entries, status=422, problem=problem, oa=oa)
    record("campaign.created", campaign, template_id=campaign.template_id, segment_id=campaign.segment_id)
    db.session.commit()
    flash(_("Draft saved. Check it with the dry run and a test send, then launch it."), "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign.id))


@bp.route("/<int:campaign_id>/edit", methods=("GET", "POST"))
@requires(Role.marketer)
def edit(campaign_id: int):
    campaign = db.get_or_404(Campaign, campaign_id)
    if campaign.is_reminder:  # its own form edits it
        return redirect(url_for("campaigns.edit_reminder", campaign_id=campaign.id), 303)
    if request.method == "POST":
        form = ComposeForm()
        if campaign.state != S.draft:
            # Disabled inputs are not posted: what may not change keeps the campaign's own value.
            saved = ComposeForm.for_campaign(campaign)
            for name in _locked_fields(campaign):
                form[name].data = saved[name].data
            form.schedule_locked = True
    else:
        form = ComposeForm.for_campaign(campaign)
    templates = _prepare(form, campaign)
    template = _template(form.template_id.data, templates)
    entries = (
        keyword_entries(template, request.form if request.method == "POST" else None, campaign.data)
        if template
        else None
    )
    oa = _oa_parts(form, campaign, request.form if request.method == "POST" else None)
    if request.method == "GET" or _refusal(campaign):
        if request.method == "POST":  # nothing is saved: the page says why
            return _page(form, campaign, templates, entries, status=409, oa=oa)
        return _page(form, campaign, templates, entries, oa=oa)
    if not form.validate():
        return _page(form, campaign, templates, entries, oa=oa)
    if _oa_values_refused(form, oa):
        return _page(form, campaign, templates, entries, status=422, oa=oa)
    fields = form.campaign_fields(template, keyword_data(entries), keyword_data(oa["oa_entries"]))
    if campaign.state == S.paused:
        kept = ("data", "rate_per_second", "oa_data") if form.uses_oa() else ("data", "rate_per_second")
        fields = {name: fields[name] for name in kept}
        if not form.uses_mp():
            del fields["data"]
    try:
        if campaign.state == S.draft and db.session.get(Segment, fields["segment_id"]) is None:
            raise services.CampaignError(404, "unknown_segment", "No segment has this id.", "segment_id")
        services.update_campaign(campaign, fields)
    except services.CampaignError as error:
        db.session.rollback()
        problem = _apply_errors(form, entries, error, template, oa["oa_entries"])
        return _page(form, campaign, templates, entries, status=422, problem=problem, oa=oa)
    except InvalidTransition as refused:
        db.session.rollback()
        campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
        return _page(form, campaign, templates, entries, status=409, problem=say(refused.message), oa=oa)
    record("campaign.edited", campaign, fields=sorted(fields))
    db.session.commit()
    flash(_("Campaign saved."), "success")
    return redirect(url_for("campaigns.detail", campaign_id=campaign.id))


def _keyword_rows(
    id_arg: str, templates_for: Callable[[str | None], list], entries_for: Callable, **fields: str
):
    """The keyword rows (``campaigns/_keyword_fields.html``) for the template whose id the query's
    ``id_arg`` names, among ``templates_for(id)``, filled by ``entries_for`` from the query (htmx)."""
    template_id = request.args.get(id_arg)
    template = _template(template_id, templates_for(template_id))
    entries = entries_for(template, request.args) if template else []
    return render_template(
        "campaigns/_keyword_fields.html", template=template, entries=entries, locked=set(), **fields
    )


@bp.route("/compose/keywords")
@requires(Role.marketer)
def keywords():
    """The keyword rows for the template chosen in the form (htmx, when the template changes)."""
    return _keyword_rows("template_id", _templates, keyword_entries)


@bp.route("/compose/oa-keywords")
@requires(Role.marketer)
def oa_keywords():
    """The Official Account template's value rows for the OA template chosen (htmx, when it changes)."""
    return _keyword_rows(
        "oa_template_id",
        _oa_templates,
        oa_keyword_entries,
        prefix="oa-",
        fields_id="oa-keyword-fields",
    )


# -- the card for a sample user --------------------------------------------------------------------------


@bp.route("/preview", defaults={"campaign_id": None})
@bp.route("/<int:campaign_id>/preview")
@requires(Role.marketer)
def preview(campaign_id: int | None):
    """The card filled for one sample user of the segment: from the form's values when the form is
    included, else from the saved campaign's."""
    campaign = db.get_or_404(Campaign, campaign_id) if campaign_id is not None else None
    args = request.args
    from_form = any(name.startswith("source-") for name in args) or campaign is None
    template_id = args.get("template_id") or (campaign.template_id if campaign else None)
    templates = _templates(template_id)
    template = _template(template_id, templates)
    if template is None:
        abort(404)
    data = keyword_data(keyword_entries(template, args)) if from_form else campaign.data
    segment_id = args.get("segment_id", type=int) or (campaign.segment_id if campaign else None)
    segment = db.session.get(Segment, segment_id) if segment_id else None
    sample = compose.sample(segment)
    chosen = (args.get("user") or "").strip()
    user = next((u for u in sample if u.openid == chosen), None)
    if user is None and chosen:
        user = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == chosen))
    if user is None and sample:
        user = sample[0]
    lang = args.get("lang") or (campaign.lang if campaign else template.lang) or "zh_CN"
    mapping = compose.user_mapping(user)
    channel = (args.get("channel") if from_form else None) or (campaign.channel if campaign else "")
    channel = channel if channel in services.CHANNELS and oa_on() else (campaign.channel if campaign else "")
    channel = channel or "mp_subscribe"
    result = oa_preview = None
    if services.uses_mp(channel):
        result = preview_words(compose.preview_for(template, data, mapping, lang), template)
    if services.uses_oa(channel):
        oa_template_id = args.get("oa_template_id") or (campaign.oa_template_id if campaign else None)
        oa_template = _template(oa_template_id, _oa_templates(oa_template_id))
        if oa_template is not None:
            oa_data = (
                keyword_data(oa_keyword_entries(oa_template, args))
                if from_form
                else (campaign.oa_data if campaign else {})
            )
            oa_preview = compose.oa_preview_for(oa_template, oa_data, mapping)
    response = make_response(
        render_template(
            "campaigns/_compose_preview.html",
            campaign=campaign,
            template=template,
            sample=sample,
            chosen=user.openid if user else "",
            sample_preview=result,
            oa_preview=oa_preview,
            reach=_reach(segment, template),
            oa_on=oa_on(),
            locale=_locale(),
        )
    )
    response.headers.add("Vary", "HX-Request")
    return response


# -- the dry run ---------------------------------------------------------------------------------------


@bp.route("/<int:campaign_id>/dry-run", methods=("GET", "POST"), endpoint="dry_run")
@requires(Role.marketer)
def dry_run_view(campaign_id: int):
    """Every user the segment holds now, filled as a launch now would fill them (htmx fragment)."""
    campaign = db.get_or_404(Campaign, campaign_id)
    if (refused := _not_for_reminders(campaign)) is not None:
        return refused
    template = db.session.scalar(
        sa.select(MessageTemplate).where(MessageTemplate.template_id == campaign.template_id)
    )
    oa_template = None
    if services.uses_oa(campaign.channel):
        oa_template = db.session.scalar(
            sa.select(OaTemplate).where(OaTemplate.template_id == campaign.oa_template_id)
        )
    segment = db.session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    missing = (template is None and services.uses_mp(campaign.channel)) or (
        oa_template is None and services.uses_oa(campaign.channel)
    )
    if missing or segment is None:
        result = dry_run.DryRun(problem=_("The campaign's template or segment no longer exists."))
    else:
        # Both messages of a campaign that may send either are judged (a user is skipped when either
        # refuses a value, as the snapshot does).
        result = dry_run.dry_run(
            template, segment.filter, campaign.data, oa_template=oa_template, oa_data=campaign.oa_data
        )
    return render_template("campaigns/_dry_run.html", campaign=campaign, dry=result, template=template)


# -- test sends ----------------------------------------------------------------------------------------


def _outcome(result: compose.TestSendResult) -> tuple[str, str]:
    """(css class, words) for one test send."""
    if result.delivery is None:
        return "error", _(
            "Not sent: for this user the value of %(key)s breaks its rule, so a launch would skip them too.",
            key=result.refused_key,
        )
    delivery = result.delivery
    if delivery.state is DeliveryState.skipped:
        known = SKIP_REASONS.get(delivery.reason)
        return "error", str(known) if known else _(
            "Not sent (%(reason)s): WeChat was not called.",
            reason=reason_label("skipped", delivery.reason) or delivery.reason,
        )
    if delivery.state is DeliveryState.failed:
        return "error", _(
            "Not sent. WeChat answered errcode %(errcode)s (%(words)s): %(errmsg)s",
            errcode=delivery.errcode,
            words=CATEGORY_WORDS.get(category_for(delivery.errcode).value, ""),
            errmsg=delivery.errmsg,
        )
    words = TEST_SEND_OUTCOMES.get(delivery.state, delivery.state.value)
    return ("ok" if delivery.state is DeliveryState.sent else "error"), str(words)


def _test_send_context(campaign: Campaign, **extra: Any) -> dict[str, Any]:
    segment = db.session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    return {
        "campaign": campaign,
        "sample": compose.sample(segment),
        "max_recipients": compose.MAX_TEST_RECIPIENTS,
        "action_form": EmptyForm(),
        "results": [],
        "problem": None,
        "typed": "",
        **extra,
    }


@bp.route("/<int:campaign_id>/test-send", methods=("GET", "POST"))
@requires(Role.marketer)
def test_send(campaign_id: int):
    """GET: the form (openids typed or picked from the sample); POST: send to at most five users now."""
    campaign = db.get_or_404(Campaign, campaign_id)
    if (refused := _not_for_reminders(campaign)) is not None:
        return refused
    if request.method == "GET":
        return render_template("campaigns/_test_send.html", **_test_send_context(campaign))
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    typed = (request.form.get("openids") or "").strip()
    openids = list(dict.fromkeys([*request.form.getlist("pick"), *OPENID_SPLIT.split(typed)]))
    openids = [o for o in openids if o]
    problem = None
    results: list[tuple[compose.TestSendResult, str, str]] = []
    if not openids:
        problem = _("Type or pick at least one openid.")
    elif len(openids) > compose.MAX_TEST_RECIPIENTS:
        problem = _("At most %(n)d users per test send.", n=compose.MAX_TEST_RECIPIENTS)
    elif bad := [o for o in openids if not OPENID_RE.fullmatch(o)]:
        problem = _("Not an openid: %(openid)s", openid=bad[0][:70])
    else:
        try:
            for result in compose.test_send(campaign, openids, current_user.id):
                results.append((result, *_outcome(result)))
        except services.CampaignError as error:
            db.session.rollback()
            problem = error_words(error, {})
    if not is_htmx():
        for result, css, words in results:
            flash(f"{result.openid}: {words}", "success" if css == "ok" else "error")
        if problem:
            flash(problem, "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
    return render_template(
        "campaigns/_test_send.html",
        **_test_send_context(campaign, results=results, problem=problem, typed=typed),
    )


# -- duplicates ------------------------------------------------------------------------------------------


@bp.route("/<int:campaign_id>/duplicate", methods=("POST",))
@requires(Role.marketer)
def duplicate(campaign_id: int):
    campaign = db.get_or_404(Campaign, campaign_id)
    if (refused := _not_for_reminders(campaign)) is not None:
        return refused
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        copy = compose.duplicate(campaign, _("%(name)s (copy)", name=campaign.name), current_user.id)
    except services.CampaignError as error:
        db.session.rollback()
        flash(_("The campaign cannot be copied: %(problem)s", problem=error_words(error, {})), "error")
        return redirect(url_for("campaigns.detail", campaign_id=campaign.id))
    flash(_("Copied as a new draft: check it and save."), "success")
    return redirect(url_for(".edit", campaign_id=copy.id))
