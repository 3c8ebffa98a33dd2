"""``/api/v1/users`` and ``/api/v1/attributes``: user data from the company's back end (API-key scope ``users``).

``PUT /users/<openid>`` upserts one user (201 created, 200 updated, with the user); ``POST /users/batch``
up to 1,000 (200 with a result per row: a refused row is reported, the others are stored). Attribute keys
must be declared first (``PUT /attributes/<key>``); the rules are in ``audience.upserts`` and
``audience.attributes``. The routes live on the ``/api/v1`` blueprint, so every failure answers in its JSON
error shape.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from sqlalchemy.exc import IntegrityError

from ..access import public
from ..audience import attributes, upserts
from ..extensions import db
from .errors import ApiError
from .v1 import _authenticated, bp
from .validation import read_json_body

MAX_USER_BODY_BYTES = 64 * 1024
# 1,000 users of 20 tags and a few dozen attributes each.
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024
MAX_ATTRIBUTE_BODY_BYTES = 4 * 1024


def _json_body(limit: int) -> Any:
    if not request.is_json:
        raise ApiError(400, "bad_request", "The body must be a JSON object (Content-Type: application/json).")
    return read_json_body(limit)


@bp.route("/users/<openid>", methods=("PUT",))
@public
def put_user(openid: str):
    """Create or update one user: 201 (created) or 200 (updated) with the user as stored now."""
    _authenticated("users")
    body = _json_body(MAX_USER_BODY_BYTES)
    try:
        row = upserts.parse_row(body, attributes.declared_types(), attributes.operator_zone(), openid=openid)
    except upserts.RowRefused as refused:
        raise ApiError(422, refused.code, refused.message, field=refused.field) from None
    written = upserts.upsert_users([row])
    status = 201 if written.statuses[0] == "created" else 200
    return jsonify(written.users[row.openid]), status


@bp.route("/users/batch", methods=("POST",))
@public
def upsert_batch():
    """Up to 1,000 users: 200 ``{"results": [{"openid", "status", "error"?}]}`` in the order given."""
    _authenticated("users")
    body = _json_body(MAX_BATCH_BODY_BYTES)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "The body must be a JSON object with users.")
    for name in body:
        if name != "users":
            raise ApiError(422, "unknown_field", f"Unknown field {name[:40]!r}.", field=str(name)[:40])
    rows = body.get("users")
    if not isinstance(rows, list):
        raise ApiError(422, "invalid_body", "users must be a list of users.", field="users")
    if len(rows) > upserts.MAX_BATCH:
        raise ApiError(
            422,
            "too_many_users",
            f"At most {upserts.MAX_BATCH} users in one batch; this one has {len(rows)}.",
            field="users",
        )
    declared = attributes.declared_types()
    zone = attributes.operator_zone()
    results: list[dict[str, Any]] = []
    good: list[tuple[int, upserts.UserRow]] = []
    for index, raw in enumerate(rows):
        given = raw.get("openid") if isinstance(raw, dict) else None
        try:
            good.append((index, upserts.parse_row(raw, declared, zone)))
        except upserts.RowRefused as refused:
            results.append(
                {
                    "openid": given if isinstance(given, str) else None,
                    "status": "error",
                    "error": refused.as_json(),
                }
            )
        else:
            results.append({"openid": given, "status": ""})
    written = upserts.upsert_users(row for _, row in good)
    for (index, _row), status in zip(good, written.statuses, strict=True):
        results[index]["status"] = status
    return jsonify(results=results)


@bp.route("/attributes", methods=("GET",))
@public
def list_attributes():
    """Every declared attribute key with its type and label."""
    _authenticated("users")
    return jsonify(
        attributes=[attributes.declaration_json(attribute) for attribute in attributes.list_declarations()]
    )


@bp.route("/attributes/<key>", methods=("PUT",))
@public
def put_attribute(key: str):
    """Declare an attribute key, or change its type or label: 201 (declared) or 200 (changed or the same)."""
    _authenticated("users")
    body = _json_body(MAX_ATTRIBUTE_BODY_BYTES)
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "The body must be a JSON object with type and label.")
    for name in body:
        if name not in ("type", "label"):
            raise ApiError(422, "unknown_field", f"Unknown field {name[:40]!r}.", field=str(name)[:40])
    try:
        checked = attributes.check_declaration(key, body.get("type"), body.get("label"))
    except attributes.DeclarationRefused as refused:
        raise ApiError(422, refused.code, refused.message, field=refused.field) from None
    for attempt in range(2):
        try:
            attribute, created = attributes.declare(*checked)
            db.session.commit()
            break
        except IntegrityError:  # declared at the same moment by another request: change that one
            db.session.rollback()
            if attempt:
                raise
    return jsonify(attributes.declaration_json(attribute)), 201 if created else 200
