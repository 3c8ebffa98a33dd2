"""JSON errors for the JSON APIs: ``{"error": {"code": "...", "message": "..."}}``, never an HTML page.

``register_json_errors(bp)`` makes every failure inside a blueprint answer in this shape: our own
``ApiError``, Werkzeug's HTTP errors (413, 405, ...), a database that is busy (503), and, as a last
resort, anything unexpected (500, logged, with the transaction rolled back so nothing half-done is kept).
The app's own handlers (``dashboard/errors.py``) answer with the same functions for every ``/api/`` path,
so an unknown path or a wrong method (405 with ``Allow``) is JSON too.
Messages are fixed sentences written here: they never echo a secret, a token or a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from ..extensions import db

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "This is not allowed."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "The request conflicts with an earlier one."),
    413: ("body_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "The body must be JSON."),
    422: ("invalid_body", "The body is not valid."),
    429: ("rate_limited", "Too many requests: slow down and retry later."),
    503: ("unavailable", "The service is busy: retry later."),
}


# The OpenAPI schema of that shape, shared by the documents of /api/mp and /api/v1.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
        }
    },
}


class ApiError(Exception):
    """An answer other than success: HTTP ``status``, a stable machine ``code`` and a human ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    response = jsonify(error=error)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def api_error_response(error: ApiError) -> Response:
    if error.status >= 500 or error.status == 409:
        db.session.rollback()
    return error_response(error.status, error.code, error.message, field=error.field, headers=error.headers)


def http_error_response(error: HTTPException) -> Response:
    """Werkzeug's HTTP errors (404, 405 with its ``Allow``, 413, ...) in the API's shape."""
    db.session.rollback()
    status = error.code or 500
    code, message = HTTP_CODES.get(status, ("error", "The request failed."))
    description = getattr(error, "api_message", None)
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    return error_response(status, code, description or message, headers=headers)


def unexpected_error_response(error: Exception) -> Response:
    db.session.rollback()
    log.error("Unhandled error in an API request: %s", type(error).__name__, exc_info=error)
    return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")


def database_busy_response(error: OperationalError) -> Response:
    # SQLite "database is locked" past the busy timeout, a PostgreSQL restart: transient, say so.
    db.session.rollback()
    log.warning("database unavailable during an API request: %s", type(error.orig).__name__)
    return error_response(503, "unavailable", HTTP_CODES[503][1], headers={"Retry-After": "1"})


def register_json_errors(bp: Blueprint) -> None:
    """Every failure inside ``bp`` in the API's shape. The app answers the same way for ``/api/`` paths
    no blueprint matched (``dashboard/errors.py``): an unknown path, a wrong method."""
    bp.register_error_handler(ApiError, api_error_response)
    bp.register_error_handler(HTTPException, http_error_response)
    bp.register_error_handler(OperationalError, database_busy_response)
    bp.register_error_handler(Exception, unexpected_error_response)
