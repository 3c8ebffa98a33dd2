"""``/api/v1/``: the server API for the company's other back ends (API-key authenticated, JSON only)."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from ..access import public
from ..apikeys.services import authenticate
from ..deliveries.send_requests import SendRefused, delivery_json, request_send
from ..dispatch.tasks import kick_dispatch
from ..extensions import csrf, db
from ..models import ApiKey, Delivery, DeliverySource
from .errors import ApiError, register_json_errors
from .idempotency import is_replay
from .v1_openapi import openapi_document
from .validation import digest, idempotency_key, read_json_body

bp = Blueprint("api_v1", __name__)
csrf.exempt(bp)
register_json_errors(bp)

MAX_BODY_BYTES = 64 * 1024
MAX_WAIT_SECONDS = 30
POLL_SECONDS = 0.05


def _authenticated(scope: str) -> ApiKey:
    key = authenticate(request.headers.get("Authorization"))
    if key is None:
        raise ApiError(401, "unauthorized", "A valid API key is required: Authorization: Bearer <key>.")
    if not key.allows(scope):
        raise ApiError(403, "forbidden", f"This API key lacks the {scope!r} scope.")
    return key


def _wait_seconds() -> float:
    raw = request.args.get("wait")
    if raw is None:
        return 0.0
    try:
        seconds = float(raw)
    except ValueError:
        raise ApiError(400, "bad_request", "wait must be a number of seconds.") from None
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise ApiError(400, "bad_request", f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds.")
    return seconds


def _wait_for_final(delivery: Delivery, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not delivery.state.is_final and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        db.session.rollback()  # end the read transaction so the worker's commit is visible
        db.session.refresh(delivery)


@bp.route("/messages", methods=("POST",))
@public
def send_message():
    """Ask for one transactional message: 202 with the delivery (200 once final when ``?wait=N``)."""
    key = _authenticated("send")
    wait = _wait_seconds()
    if not request.is_json:
        raise ApiError(400, "bad_request", "The body must be a JSON object (Content-Type: application/json).")
    body = read_json_body(MAX_BODY_BYTES)
    body_digest = digest(body) if isinstance(body, dict) else None
    try:
        delivery, created = request_send(key, body, idempotency_key(), body_digest)
    except SendRefused as refused:
        raise ApiError(refused.status, refused.code, refused.message, field=refused.field) from None
    if not created and not is_replay(delivery.request_digest, body_digest or ""):
        raise ApiError(409, "idempotency_conflict", "This Idempotency-Key was used for a different message.")
    if created:
        kick_dispatch()
    if wait:
        _wait_for_final(delivery, wait)
    return jsonify(delivery_json(delivery)), 200 if delivery.state.is_final else 202


@bp.route("/messages/<int:delivery_id>", methods=("GET",))
@public
def get_message(delivery_id: int):
    """The same object as the POST answered, as it stands now.

    A key sees the messages it sent (or every API message with ``read_all``); another key's message is
    the same 404 as a message that does not exist, so ids cannot be probed for what other back ends send.
    """
    key = _authenticated("read")
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.source != DeliverySource.api or not key.may_read(delivery.api_key_id):
        raise ApiError(404, "not_found", "No message with this id was sent through the API.")
    return jsonify(delivery_json(delivery))


@bp.route("/openapi.json", methods=("GET",))
@public
def openapi():
    return jsonify(openapi_document())
