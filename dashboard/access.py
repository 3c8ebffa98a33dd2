"""Who may do what. Every view declares what it needs; one hook decides, before the view runs.

A view with no declaration is refused (fail closed), and a test walks the URL map to make sure
every endpoint declares something.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, abort, current_app, redirect, request, url_for
from flask_login import current_user

from .models import Role

F = TypeVar("F", bound=Callable)

ROLE_ATTR = "_tongzhi_required_role"
PUBLIC_ATTR = "_tongzhi_public"


def requires(role: Role | str) -> Callable[[F], F]:
    """Declare the least role a view needs (``viewer`` < ``marketer`` < ``admin``)."""
    needed = Role(role)

    def decorate(view: F) -> F:
        setattr(view, ROLE_ATTR, needed)
        return view

    return decorate


def public(view: F) -> F:
    """Declare a view open without login (the login page; token-authenticated JSON APIs)."""
    setattr(view, PUBLIC_ATTR, True)
    return view


def declared_access(app: Flask, endpoint: str) -> Role | str | None:
    """``Role`` for operator views, ``"public"`` for open ones, ``None`` when undeclared."""
    if endpoint == "static":
        return "public"
    view = app.view_functions.get(endpoint)
    if view is None:
        return None
    if getattr(view, PUBLIC_ATTR, False):
        return "public"
    return getattr(view, ROLE_ATTR, None)


def can(role: Role | str) -> bool:
    """For templates: show a control only to operators who may use it."""
    return bool(current_user.is_authenticated and Role(current_user.role).allows(Role(role)))


def check_access():
    endpoint = request.endpoint
    if endpoint is None:  # 404s and 405s are answered by their own handlers
        return None
    needed = declared_access(current_app, endpoint)
    if needed == "public":
        return None
    if not current_user.is_authenticated:
        if request.headers.get("HX-Request") == "true":
            response = current_app.response_class(status=401)
            response.headers["HX-Redirect"] = url_for("auth.login")
            return response
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if needed is None or not Role(current_user.role).allows(needed):
        abort(403)
    return None


def init_app(app: Flask) -> None:
    app.before_request(check_access)
    app.jinja_env.globals["can"] = can
