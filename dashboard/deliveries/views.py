"""The Deliveries page: every send attempt (campaign, API, test), filterable, with WeChat's answer."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..access import requires
from ..dispatch.tasks import kick_dispatch
from ..extensions import db
from ..forms import EmptyForm
from ..htmx import render_page_or_fragment
from ..models import Delivery, DeliverySource, DeliveryState, Role
from . import services

bp = Blueprint("deliveries", __name__)
PAGE_SIZE = 50


@bp.route("/")
@requires(Role.viewer)
def index():
    criteria = services.DeliveryFilter.from_args(request.args)
    page = db.paginate(services.filtered(criteria), per_page=PAGE_SIZE, error_out=False)
    return render_page_or_fragment(
        "deliveries/index.html",
        "deliveries/_table.html",
        page=page,
        args=request.args,
        states=list(DeliveryState),
        sources=list(DeliverySource),
        counts=services.counts_by_state(criteria),
    )


@bp.route("/<int:delivery_id>")
@requires(Role.viewer)
def detail(delivery_id: int):
    delivery = db.get_or_404(Delivery, delivery_id)
    return render_page_or_fragment(
        "deliveries/detail.html", "deliveries/_detail.html", delivery=delivery, resend_form=EmptyForm()
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
