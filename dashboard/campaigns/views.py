"""The Campaigns pages: the list (with a state filter) and a campaign's state and counts, with launch,
pause, resume and cancel behind a confirmation. Composing is done through the API for now."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..access import requires
from ..audit.services import record
from ..dispatch.tasks import kick_dispatch
from ..extensions import db
from ..forms import EmptyForm
from ..htmx import render_page_or_fragment
from ..models import Role
from ..models.campaign import Campaign, CampaignState
from ..models.segment import Segment
from . import services
from .states import InvalidTransition

bp = Blueprint("campaigns", __name__)
PAGE_SIZE = 50
STATE_LABELS = {
    "draft": _l("draft"),
    "scheduled": _l("scheduled"),
    "running": _l("running"),
    "paused": _l("paused"),
    "completed": _l("completed"),
    "cancelled": _l("cancelled"),
}
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


@bp.app_template_global()
def campaign_state_label(state: str) -> str:
    return str(STATE_LABELS.get(state, state))


@bp.route("/")
@requires(Role.viewer)
def index():
    state = request.args.get("state", "")
    query = sa.select(Campaign).order_by(Campaign.id.desc())
    if state in STATE_LABELS:
        query = query.where(Campaign.state == state)
    page = db.paginate(query, per_page=PAGE_SIZE, error_out=False)
    return render_page_or_fragment(
        "campaigns/index.html", "campaigns/_table.html", page=page, state=state, states=list(CampaignState)
    )


@bp.route("/<int:campaign_id>")
@requires(Role.viewer)
def detail(campaign_id: int):
    campaign = db.get_or_404(Campaign, campaign_id)
    return render_page_or_fragment(
        "campaigns/detail.html",
        "campaigns/_progress.html",
        campaign=campaign,
        counts=services.counts(campaign),
        segment=db.session.get(Segment, campaign.segment_id) if campaign.segment_id else None,
        buttons=[(name, ACTIONS[name][1]) for name in BUTTONS.get(campaign.state, ())],
        form=EmptyForm(),
    )


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
