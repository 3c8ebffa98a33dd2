"""The Deliveries page: every send attempt (campaign, API, test), filterable, with WeChat's answer.

The list and a delivery's page refresh themselves (htmx polling of their fragment) while a row shown
is still moving (pending, sending, retry_wait); the fragment rendered without the trigger stops it.
The list downloads as CSV with the same filters.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..access import requires
from ..csv_export import csv_response
from ..dispatch.tasks import kick_dispatch
from ..extensions import db
from ..forms import EmptyForm
from ..htmx import render_page_or_fragment
from ..models import Delivery, DeliverySource, DeliveryState, Role
from . import services

bp = Blueprint("deliveries", __name__)
PAGE_SIZE = 50


# How often a page with moving rows asks again, in seconds.
POLL_SECONDS = 4
MINIPROGRAM_STATE_LABELS = {
    "formal": _l("published version"),
    "trial": _l("trial version"),
    "developer": _l("developer version"),
}


@bp.app_template_global()
def miniprogram_state_label(state: str) -> str:
    return str(MINIPROGRAM_STATE_LABELS.get(state, state))


@bp.app_template_global()
def report_status_label(status: str | None) -> str:
    """WeChat's delivery report (``subscribe_msg_sent_event`` ``ErrorStatus``) in words."""
    status = status or ""
    if status == "success":
        return _("delivered to the user")
    if status.startswith("fail:user"):
        return _("refused by the user (notifications turned off)")
    # The Official Account's TEMPLATESENDJOBFINISH: "failed:user block", "failed: system failed".
    if status.startswith("failed:user"):
        return _("refused by the user (blocked the Official Account's messages)")
    if status.startswith("fail"):
        return _("not delivered: WeChat's system failed (%(status)s)", status=status)
    return status


@bp.route("/")
@requires(Role.viewer)
def index():
    criteria = services.DeliveryFilter.from_args(request.args)
    page = db.paginate(services.filtered(criteria), per_page=PAGE_SIZE, error_out=False)
    counts = services.counts_by_state(criteria)
    return render_page_or_fragment(
        "deliveries/index.html",
        "deliveries/_table.html",
        page=page,
        args=request.args,
        criteria=criteria,
        states=list(DeliveryState),
        sources=list(DeliverySource),
        counts=counts,
        chips=services.chip_counts(counts),
        chip_states=services.CHIPS,
        templates=services.templates_for(d.template_id for d in page.items),
        catalog=services.catalog_choices(),
        categories=services.CATEGORIES,
        reasons=services.REASON_LABELS,
        moving=services.any_moving(page.items),
        poll_seconds=POLL_SECONDS,
        short_openid=services.short_openid,
        outcome_text=services.outcome_text,
    )


@bp.route("/export.csv")
@requires(Role.viewer)
def export_csv():
    """The list as CSV with the same filters, streamed in batches (never built in memory)."""
    criteria = services.DeliveryFilter.from_args(request.args)
    return csv_response(services.csv_rows(criteria), "deliveries.csv")


@bp.route("/<int:delivery_id>")
@requires(Role.viewer)
def detail(delivery_id: int):
    delivery = db.get_or_404(Delivery, delivery_id)
    return render_page_or_fragment(
        "deliveries/detail.html",
        "deliveries/_detail.html",
        delivery=delivery,
        resend_form=EmptyForm(),
        card=services.delivered_card(delivery),
        template=services.templates_for([delivery.template_id]).get(delivery.template_id),
        oa=services.delivered_oa_card(delivery),
        locale=(get_locale().language if get_locale() else "en"),  # the OA card's rule messages
        moving=delivery.state in services.MOVING_STATES,
        poll_seconds=POLL_SECONDS,
        short_openid=services.short_openid,
        outcome_text=services.outcome_text,
    )


@bp.route("/<int:delivery_id>/resend", methods=("POST",))
@requires(Role.marketer)
def resend(delivery_id: int):
    """Force an ``unknown`` delivery out again, after the operator confirmed the risk of a duplicate."""
    original = db.get_or_404(Delivery, delivery_id)
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm that the user may receive this message twice."), "error")
        return redirect(url_for(".detail", delivery_id=delivery_id))
    try:
        resend = services.force_resend(original, current_user.id)
    except services.ResendRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for(".detail", delivery_id=delivery_id))
    db.session.commit()
    kick_dispatch()
    flash(_("Queued again as delivery #%(id)d.", id=resend.id), "success")
    return redirect(url_for(".detail", delivery_id=resend.id))
