"""``/api/v1/segments``: save a segment and read its count and reach (API-key scope ``campaigns``).

The routes live on the ``/api/v1`` blueprint, so every failure answers in its JSON error shape. An
unknown leaf or operator in the filter is a 422 whose ``field`` is the path to it (``filter.all[2]``)
and whose message names it.
"""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask_babel import force_locale
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..access import public
from ..audience import segments as filters
from ..audience.reach import reach_by_channel
from ..config import oa_configured
from ..extensions import db
from ..models import Segment, utcnow
from ..models.catalog import MessageTemplate
from ..segments import services
from .errors import ApiError
from .v1 import _authenticated, bp
from .validation import read_json_body

# Room for a segment of about 100,000 openids.
MAX_BODY_BYTES = 4 * 1024 * 1024
FIELDS = ("name", "filter")


def _refusal(refused: services.SegmentRefused) -> ApiError:
    with force_locale("en"):  # the API speaks English whatever the caller's Accept-Language
        message = refused.message
    status = 409 if refused.code == "name_taken" else 422
    return ApiError(status, refused.code, message, field=refused.field)


@bp.route("/segments", methods=("POST",))
@public
def create_segment():
    """Save a segment: 201 ``{"id", "name", "count"}``."""
    _authenticated("campaigns")
    if not request.is_json:
        raise ApiError(400, "bad_request", "The body must be a JSON object (Content-Type: application/json).")
    body = read_json_body(MAX_BODY_BYTES)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "The body must be a JSON object with name and filter.")
    for name in body:
        if name not in FIELDS:
            raise ApiError(422, "unknown_field", f"Unknown field {name[:40]!r}.", field=str(name)[:40])
    if "filter" not in body:
        raise ApiError(422, "invalid_filter", "filter is required.", field="filter")
    try:
        segment = services.save_segment(None, body.get("name"), body["filter"], None)
        db.session.commit()
    except services.SegmentRefused as refused:
        db.session.rollback()
        raise _refusal(refused) from None
    except IntegrityError:  # a concurrent save took the name
        db.session.rollback()
        raise ApiError(409, "name_taken", "Another segment has this name.", field="name") from None
    count = filters.count_users(segment.filter, utcnow())
    return jsonify(id=segment.id, name=segment.name, count=count), 201


@bp.route("/segments/<int:segment_id>", methods=("GET",))
@public
def get_segment(segment_id: int):
    """A segment's count now; with ``?template_id=T`` also how many a campaign of T could reach and why not,
    and ``reach``: how many each channel could message (the Official Account's figures null while that
    channel is off)."""
    _authenticated("campaigns")
    segment = db.session.get(Segment, segment_id)
    if segment is None:
        raise ApiError(404, "not_found", "No segment with this id.")
    now = utcnow()
    template_id = request.args.get("template_id")
    answer: dict = {"id": segment.id, "name": segment.name, "filter": segment.filter}
    if template_id is None:
        answer["count"] = filters.count_users(segment.filter, now)
        return jsonify(answer)
    known = db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.template_id == template_id))
    if known is None:
        raise ApiError(404, "unknown_template", "No template with this template_id in the catalog.")
    reach = filters.reach(segment.filter, template_id, now)
    answer.update(count=reach.total, reachable=reach.reachable, unreachable=reach.unreachable)
    by_channel = reach_by_channel(segment.filter, template_id, now)
    if not oa_configured(current_app.config):
        by_channel.update(oa_template=None, mp_subscribe_or_oa=None)
    answer["reach"] = by_channel
    return jsonify(answer)
