"""The operators' cookie session, not opened for the APIs that authenticate each request by a token.

Flask opens the signed cookie session on every request, before it knows the view. The mini-program's
API (``/api/mp/``) answers by its Bearer token only, so it gets Flask's null session: nothing to verify or
sign, nothing it could write by mistake (a write raises), and no operator for the hooks that ask
``current_user`` (the access check, the password-change redirect, no-store) to load. Asked for every
ping and grant report, the ingest path that must keep up with a mini-program's evening prompt (issue 13).
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

TOKEN_ONLY_PREFIXES = ("/api/mp/",)


class OperatorCookieSession(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(TOKEN_ONLY_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)
