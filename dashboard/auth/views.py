"""Login, logout, own password, language choice."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..access import declared_access, public, requires
from ..audit.services import record
from ..extensions import db
from ..models import Role
from . import services
from .forms import LoginForm, PasswordChangeForm

bp = Blueprint("auth", __name__)


# What an operator who must change their password may still do.
ALLOWED_BEFORE_PASSWORD_CHANGE = {"auth.change_password", "auth.logout", "auth.set_language"}


@bp.before_app_request
def require_password_change():
    """An operator whose password an admin reset may only choose a new one (or log out), in every
    session they have, until they do: the console's pages redirect to the password page."""
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    endpoint = request.endpoint
    if endpoint is None or endpoint in ALLOWED_BEFORE_PASSWORD_CHANGE:
        return None
    if not isinstance(declared_access(current_app, endpoint), Role):
        return None  # public pages, static files and the token-authenticated APIs
    target = url_for("auth.change_password")
    if request.headers.get("HX-Request") == "true":
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would be a phishing tool."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


@bp.route("/login", methods=("GET", "POST"))
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        result = services.authenticate(form.email.data, form.password.data)
        db.session.commit()
        if result.ok:
            session.clear()  # a fresh session at login defeats session fixation
            login_user(result.operator)
            session.permanent = True
            if result.operator.must_change_password:
                return redirect(url_for("auth.change_password"))
            return redirect(_safe_next(form.next.data))
        if result.failure == "disabled":
            # Said only to someone who gave the right password, so it reveals nothing to a guesser.
            form.form_errors.append(_("This account is disabled. Ask an administrator."))
        else:
            # One sentence for a wrong password, an unknown email and a locked account alike:
            # a distinct lockout message would tell a guesser which emails have accounts.
            form.form_errors.append(
                _(
                    "Wrong email or password. After %(count)d failures in a row an account is locked "
                    "for %(minutes)d minutes, and even the right password is refused until then.",
                    count=current_app.config["LOGIN_MAX_FAILURES"],
                    minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"],
                )
            )
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=("POST",))
@requires(Role.viewer)
def logout():
    record("auth.logout", current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=("GET", "POST"))
@requires(Role.viewer)
def change_password():
    operator = current_user._get_current_object()
    forced = operator.must_change_password
    form = PasswordChangeForm(operator)
    if form.validate_on_submit():
        services.change_password(operator, form.new_password.data)
        db.session.commit()
        flash(_("Your password is changed."), "success")
        return redirect(url_for("home.index"))
    return render_template("auth/password.html", form=form, forced=forced)


@bp.route("/language/<code>", methods=("POST",))
@public
def set_language(code: str):
    """Switch the UI language; remembered on the operator when logged in, in the session otherwise."""
    if code not in current_app.config["LANGUAGES"]:
        abort(404)
    session["locale"] = code
    if current_user.is_authenticated:
        services.set_locale(current_user._get_current_object(), code)
        db.session.commit()
    return redirect(_safe_next(request.form.get("next")))
