"""The Deliveries page: every send attempt (campaign, API, test), filterable, with WeChat's answer."""

from __future__ import annotations

from flask import Blueprint, request

from ..access import requires
from ..extensions import db
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
    return render_page_or_fragment("deliveries/detail.html", "deliveries/_detail.html", delivery=delivery)
