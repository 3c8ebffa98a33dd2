"""The Campaigns pages: the list (with a state filter) and a campaign's page — its state, its progress
(polled while it may still change), launch, pause, resume and cancel behind a confirmation, and once it
has started its report: outcomes by error class, opens, the delivery log (filtered, paged, as CSV) and
"retry transient failures"."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from ..access import requires
from ..audit.services import record
from ..csv_export import csv_response, stream_csv
from ..dispatch.tasks import kick_dispatch
from ..extensions import db
from ..forms import EmptyForm
from ..htmx import is_htmx, render_page_or_fragment
from ..labels import CAMPAIGN_STATE_LABELS
from ..models import DeliveryState, Role
from ..models.campaign import Campaign, CampaignState
from ..models.catalog import MessageTemplate
from ..models.segment import Segment
from ..models.types import utcnow
from ..models.user_attribute import UserAttribute
from . import recurring, reminders, report, retry, services
from .states import InvalidTransition

bp = Blueprint("campaigns", __name__)
PAGE_SIZE = 50
LOG_PAGE_SIZE = 25
# States in which the progress card polls: it may still change by itself.
LIVE_STATES = (CampaignState.scheduled, CampaignState.running, CampaignState.paused)
STATE_LABELS = CAMPAIGN_STATE_LABELS
RUNS_PAGE_SIZE = 20
ACTIONS = {
    "launch": (services.launch, _l("Launch")),
    "pause": (services.pause, _l("Pause")),
    "resume": (services.resume, _l("Resume")),
    "cancel": (services.cancel, _l("Cancel campaign")),
}
# Which buttons a state shows (the state machine refuses the rest anyway).
BUTTONS = {
    CampaignState.draft: ("launch", "cancel"),
    CampaignState.scheduled: ("cancel",),
    CampaignState.running: ("pause", "cancel"),
    CampaignState.paused: ("resume", "cancel"),
}
# A recurring campaign: pausing or cancelling stops its future runs (runs under way have their own page).
RECURRING_BUTTONS = {
    CampaignState.draft: ("launch", "cancel"),
    CampaignState.scheduled: ("pause", "cancel"),
    CampaignState.paused: ("resume", "cancel"),
}


@bp.app_template_global()
def campaign_state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


@bp.route("/")
@requires(Role.viewer)
def index():
    state = request.args.get("state", "")
    # Runs of recurring campaigns are listed on their campaign's page, not here.
    query = sa.select(Campaign).where(Campaign.parent_id.is_(None)).order_by(Campaign.id.desc())
    if state in STATE_LABELS:
        query = query.where(Campaign.state == state)
    page = db.paginate(query, per_page=PAGE_SIZE, error_out=False)
    return render_page_or_fragment(
        "campaigns/index.html",
        "campaigns/_table.html",
        page=page,
        state=state,
        states=[s for s in CampaignState if s != CampaignState.missed],
    )


@bp.app_template_global()
def campaign_channel_label(channel: str) -> str:
    """The channel a campaign asks for, in words (``forms.CHANNEL_CHOICES``)."""
    from .forms import CHANNEL_CHOICES

    return str(dict(CHANNEL_CHOICES).get(channel, channel))


@bp.app_template_global()
def campaign_schedule_words(campaign: Campaign) -> str:
    return recurring.schedule_words(campaign.schedule)


@bp.app_template_global()
def campaign_hold_text(campaign: Campaign) -> str:
    """Why a campaign is paused or waits, in the operator's language ("" when nothing holds it)."""
    return report.hold_text(campaign)


def _log_context(campaign: Campaign, args) -> dict:
    criteria = report.LogFilter.from_args(args)
    log = db.paginate(report.log_query(campaign.id, criteria), per_page=LOG_PAGE_SIZE, error_out=False)
    return {
        "log": log,
        "log_filter": criteria,
        "class_labels": report.CLASS_LABELS,
        "skip_labels": report.SKIP_LABELS,
        "delivery_states": [state.value for state in DeliveryState],
        "row_outcome": report.row_outcome,
    }


@bp.route("/<int:campaign_id>")
@requires(Role.viewer)
def detail(campaign_id: int):
    campaign = db.get_or_404(Campaign, campaign_id)
    seen = request.args.get("seen")
    if is_htmx() and seen and seen != campaign.state.value:
        # The state changed under the page (completed, paused by itself...): its buttons and report
        # belong to the new state, so the whole page is loaded again.
        response = Response("", 200)
        response.headers["HX-Refresh"] = "true"
        response.headers.add("Vary", "HX-Request")
        return response
    context = {
        "campaign": campaign,
        "figures": report.figures(campaign),
        "live": campaign.state in LIVE_STATES and not campaign.is_recurring,
        "duration_text": report.duration_text,
    }
    if not is_htmx():
        context |= _log_context(campaign, request.args) if campaign.started_at else {}
        buttons = RECURRING_BUTTONS if campaign.is_recurring else BUTTONS
        context |= _recurring_context(campaign)
        context |= _reminder_context(campaign)
        context |= {
            "segment": db.session.get(Segment, campaign.segment_id) if campaign.segment_id else None,
            "template": db.session.scalar(
                sa.select(MessageTemplate).where(MessageTemplate.template_id == campaign.template_id)
            ),
            "buttons": [(name, ACTIONS[name][1]) for name in buttons.get(campaign.state, ())],
            "can_retry": campaign.state in retry.RETRY_STATES,
            "form": EmptyForm(),
        }
    return render_page_or_fragment("campaigns/detail.html", "campaigns/_progress.html", **context)


def _recurring_context(campaign: Campaign) -> dict:
    """A recurring campaign's runs (a page of them, with their counts), or a run's recurring campaign."""
    if campaign.is_recurring:
        runs = db.paginate(recurring.runs_query(campaign.id), per_page=RUNS_PAGE_SIZE, error_out=False)
        return {"runs": runs, "run_counts": recurring.run_counts([run.id for run in runs.items])}
    if campaign.parent_id is not None:
        return {"parent": db.session.get(Campaign, campaign.parent_id)}
    return {}


def _reminder_context(campaign: Campaign) -> dict:
    """A date reminder's steps and its forecast for the next 14 days (counted in SQL)."""
    if not campaign.is_reminder or campaign.parent_id is not None:
        return {}
    rows = reminders.forecast(campaign, utcnow())
    return {
        "reminder": campaign.reminder,
        "reminder_label": db.session.scalar(
            sa.select(UserAttribute.label).where(UserAttribute.key == campaign.reminder["attribute"])
        ),
        "forecast_rows": [row for row in rows if row.due],
        "forecast_days": reminders.FORECAST_DAYS,
        "forecast_totals": {
            "due": sum(row.due for row in rows),
            "live": sum(row.live for row in rows),
            "grant_again": sum(row.grant_again for row in rows),
            "blocked": sum(row.blocked for row in rows),
        },
    }


@bp.app_template_global()
def reminder_offset_words(offset_days: int) -> str:
    if offset_days == 0:
        return _("On the day")
    if offset_days < 0:
        return ngettext("%(num)d day before", "%(num)d days before", -offset_days)
    return ngettext("%(num)d day after", "%(num)d days after", offset_days)


@bp.route("/<int:campaign_id>/reminder-forecast.csv")
@requires(Role.viewer)
def reminder_forecast_csv(campaign_id: int):
    """The users due a step in the next 14 days who cannot be sent to now, with why: to prompt them."""
    campaign = db.get_or_404(Campaign, campaign_id)
    if not campaign.is_reminder or campaign.parent_id is not None:
        abort(404)
    statement, key = reminders.export_statement(campaign, utcnow())
    return csv_response(
        stream_csv(reminders.EXPORT_HEADER, statement, key, reminders.export_cells),
        f"reminder-{campaign_id}-to-prompt.csv",
    )


@bp.route("/<int:campaign_id>/deliveries")
@requires(Role.viewer)
def deliveries(campaign_id: int):
    """The campaign's delivery log: the fragment for htmx (filters, pages), else the campaign's page."""
    campaign = db.get_or_404(Campaign, campaign_id)
    if not is_htmx():
        args = report.LogFilter.from_args(request.args).to_args()
        if request.args.get("page", "").isdigit():
            args["page"] = request.args["page"]
        return redirect(url_for(".detail", campaign_id=campaign_id, **args, _anchor="campaign-log"))
    return render_page_or_fragment(
        "campaigns/detail.html",
        "campaigns/_log.html",
        campaign=campaign,
        **_log_context(campaign, request.args),
    )


@bp.route("/<int:campaign_id>/deliveries.csv")
@requires(Role.viewer)
def deliveries_csv(campaign_id: int):
    """The filtered log as CSV, streamed in batches (never built in memory)."""
    db.get_or_404(Campaign, campaign_id)
    criteria = report.LogFilter.from_args(request.args)
    response = Response(
        stream_with_context(report.csv_rows(campaign_id, criteria)), mimetype="text/csv; charset=utf-8"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="campaign-{campaign_id}-deliveries.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:campaign_id>/retry-failed", methods=("POST",))
@requires(Role.marketer)
def retry_failed(campaign_id: int):
    """Send the campaign's transient failures again, once the operator confirmed how many."""
    db.get_or_404(Campaign, campaign_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm."), "error")
        return redirect(url_for(".detail", campaign_id=campaign_id))
    try:
        count = retry.retry_failed(campaign_id)
    except InvalidTransition as refused:
        db.session.rollback()
        state = campaign_state_label(refused.current.value)
        flash(_("Not possible now: the campaign is %(state)s.", state=state), "error")
        return redirect(url_for(".detail", campaign_id=campaign_id))
    if not count:
        db.session.rollback()
        flash(_("No failed send can be retried."), "error")
        return redirect(url_for(".detail", campaign_id=campaign_id))
    record("campaign.retry_failed", db.session.get(Campaign, campaign_id), rows=count)
    db.session.commit()
    kick_dispatch()
    flash(_("%(n)s failed sends queued again.", n=count), "success")
    return redirect(url_for(".detail", campaign_id=campaign_id))


@bp.route("/<int:campaign_id>/<action>", methods=("POST",))
@requires(Role.marketer)
def act(campaign_id: int, action: str):
    if action not in ACTIONS:
        abort(404)
    db.get_or_404(Campaign, campaign_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm."), "error")
        return redirect(url_for(".detail", campaign_id=campaign_id))
    move, label = ACTIONS[action]
    try:
        campaign = move(campaign_id)
    except InvalidTransition as refused:
        db.session.rollback()
        state = campaign_state_label(refused.current.value)
        flash(_("Not possible now: the campaign is %(state)s.", state=state), "error")
        return redirect(url_for(".detail", campaign_id=campaign_id))
    except services.CampaignError as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return redirect(url_for(".detail", campaign_id=campaign_id))
    record(f"campaign.{action}", campaign, state=campaign.state.value)
    db.session.commit()
    kick_dispatch()
    flash(_("Done: %(action)s.", action=label), "success")
    return redirect(url_for(".detail", campaign_id=campaign_id))


# The date reminder's form registers its route on this blueprint.
from . import reminder_form  # noqa: E402, F401
