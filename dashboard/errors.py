"""Error pages: a full page for browsers, a fragment for htmx, never a stack trace."""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .htmx import is_htmx


def _render(status: int, description: str | None = None):
    template = "errors/_inline.html" if is_htmx() else "errors/page.html"
    try:
        return render_template(template, status=status, description=description), status
    except Exception:  # the layout itself failed: answer plainly rather than not at all
        if status < 500:
            raise
        return "Internal error. It has been logged.", 500, {"Content-Type": "text/plain; charset=utf-8"}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _render(400, "csrf")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, InternalServerError):
            return internal_error(error)
        if error.code is None or error.code < 400:
            return error
        return _render(error.code)

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        # A failed request must not leave half a change behind for the next one to commit.
        db.session.rollback()
        original = getattr(error, "original_exception", None) or error
        app.logger.error("Unhandled error: %s", type(original).__name__, exc_info=original)
        return _render(500)
