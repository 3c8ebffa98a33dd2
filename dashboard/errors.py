"""Error pages: a full page for browsers, a fragment for htmx, JSON under ``/api/``, never a stack trace."""

from __future__ import annotations

from flask import Flask, current_app, make_response, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .api import errors as api_errors
from .extensions import db
from .htmx import is_htmx
from .storable import UnstorableInput

API_PREFIX = "/api/"


def is_api_request() -> bool:
    """The JSON APIs answer in JSON even where no blueprint matched: an unknown path, a wrong method."""
    return request.path.startswith(API_PREFIX)


def _render(status: int, description: str | None = None):
    template = "errors/_inline.html" if is_htmx() else "errors/page.html"
    try:
        return render_template(template, status=status, description=description), status
    except Exception:  # the layout itself failed: answer plainly rather than not at all
        if status < 500:
            raise
        return "Internal error. It has been logged.", 500, {"Content-Type": "text/plain; charset=utf-8"}


def _without_trailing_slash() -> str | None:
    """``/segments/`` typed by hand (or left by a proxy) finds ``/segments``: the same path without its
    trailing slash, when a page lives there, for a GET or HEAD."""
    path = request.path
    if request.method not in ("GET", "HEAD") or len(path) < 2 or not path.endswith("/"):
        return None
    bare = path.rstrip("/") or "/"
    try:
        current_app.create_url_adapter(request).match(bare, method=request.method)
    except HTTPException:
        return None
    query = request.query_string.decode("latin-1")
    return request.script_root + bare + (f"?{query}" if query else "")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(api_errors.ApiError, api_errors.api_error_response)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        if is_api_request():
            return api_errors.http_error_response(error)
        return _render(400, "csrf")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, InternalServerError):
            return internal_error(error)
        if error.code is None or error.code < 400:
            return error
        if is_api_request():
            return api_errors.http_error_response(error)
        if error.code == 404 and (redirect_to := _without_trailing_slash()):
            return redirect(redirect_to, 308)
        response = make_response(
            _render(error.code, error.description if isinstance(error, UnstorableInput) else None)
        )
        if error.code == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        # A failed request must not leave half a change behind for the next one to commit.
        db.session.rollback()
        original = getattr(error, "original_exception", None) or error
        if is_api_request():
            return api_errors.unexpected_error_response(original)
        app.logger.error("Unhandled error: %s", type(original).__name__, exc_info=original)
        return _render(500)
