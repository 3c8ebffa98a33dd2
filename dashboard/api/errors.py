"""JSON errors for the JSON APIs: ``{"error": {"code": "...", "message": "..."}}``, never an HTML page.

``register_json_errors(bp)`` makes every failure inside a blueprint answer in this shape: our own
``ApiError``, Werkzeug's HTTP errors (413, 405, ...), a database that is busy (503), and, as a last
resort, anything unexpected (500, logged, with the transaction rolled back so nothing half-done is kept).
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


def register_json_errors(bp: Blueprint) -> None:
    @bp.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        if error.status >= 500 or error.status == 409:
            db.session.rollback()
        return error_response(
            error.status, error.code, error.message, field=error.field, headers=error.headers
        )

    @bp.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        db.session.rollback()
        status = error.code or 500
        code, message = HTTP_CODES.get(status, ("error", "The request failed."))
        headers = {}
        if status == 405 and getattr(error, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return error_response(status, code, message, headers=headers)

    @bp.errorhandler(OperationalError)
    def database_busy(error: OperationalError) -> Response:
        # SQLite "database is locked" past the busy timeout, a PostgreSQL restart: transient, say so.
        db.session.rollback()
        log.warning("database unavailable during an API request: %s", type(error.orig).__name__)
        return error_response(503, "unavailable", HTTP_CODES[503][1], headers={"Retry-After": "1"})

    @bp.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        db.session.rollback()
        log.error("Unhandled error in an API request: %s", type(error).__name__, exc_info=error)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
