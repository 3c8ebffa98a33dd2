"""The home page: today's sends, grants per day, campaigns and what needs a person, from the database."""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, render_template
from flask_babel import lazy_gettext as _l

from ..access import requires
from ..models import Role
from ..wechat.check import CheckResult, run_check
from . import services

bp = Blueprint("home", __name__)

# The WeChat connection check calls WeChat (a token, then the template list): the home page asks at most
# this often per process and shows the last answer in between.
CHECK_SECONDS = 300
_check_lock = threading.Lock()

# Error classes in words (dashboard/wechat/errors.py ErrorCategory, and the engine's "gave_up").
CATEGORY_LABELS = {
    "token": _l("Access token refused"),
    "transient": _l("Temporary WeChat error"),
    "quota": _l("Daily quota used up"),
    "no_grant": _l("No subscription credit"),
    "recipient": _l("Invalid recipient"),
    "template": _l("Template invalid or removed"),
    "content": _l("Content breaks the rules"),
    "page": _l("Page not in the published mini-program"),
    "config": _l("Account or set-up problem"),
    "unknown": _l("Outcome unknown"),
    "other": _l("Other error"),
    "gave_up": _l("Given up after retries"),
}


@bp.app_template_global()
def error_category_label(category: str | None) -> str:
    return str(CATEGORY_LABELS.get(category or "other", CATEGORY_LABELS["other"]))


@bp.route("/")
@requires(Role.viewer)
def index():
    return render_template("home/index.html", figures=services.home_figures())


@bp.route("/home/wechat-check")
@requires(Role.viewer)
def wechat_check():
    """The settings page's connection check, loaded after the page: an alert when it fails, else nothing."""
    return render_template("home/_wechat_check.html", check=_recent_check())


def _recent_check() -> CheckResult:
    cache = current_app.extensions.setdefault("home_wechat_check", {})
    with _check_lock:
        at, result = cache.get("at"), cache.get("result")
        if result is None or at is None or time.monotonic() - at > CHECK_SECONDS:
            result = run_check()
            cache.update(at=time.monotonic(), result=result)
    return result
