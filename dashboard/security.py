"""Response headers that make the browser enforce what the pages promise."""

from flask import Flask, Response, request
from flask_login import current_user

# No inline scripts or styles anywhere: htmx and our own JS are files under /static.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def init_app(app: Flask) -> None:
    @app.after_request
    def set_security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if _for_one_operator_only():
            response.headers["Cache-Control"] = "no-store"
        return response


def _for_one_operator_only() -> bool:
    """Whether a response is for one operator's eyes only, so no browser or proxy cache may keep it:
    every answer to a logged-in operator (a new API key's page included) and the answer to a login
    attempt. Static files stay cacheable: they are the same for everybody."""
    if request.endpoint == "static":
        return False
    if request.endpoint == "auth.login" and request.method == "POST":
        return True
    return current_user.is_authenticated
