"""The home page: today's sends, grants per day, campaigns and what needs a person, from the database."""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, render_template

from ..access import requires
from ..labels import ERROR_CATEGORY_LABELS
from ..models import Role
from ..wechat.check import CheckResult, run_check
from . import services

bp = Blueprint("home", __name__)

# The WeChat connection check calls WeChat (a token, then the template list): the home page asks at most
# this often per process and shows the last answer in between.
CHECK_SECONDS = 300
_check_lock = threading.Lock()

# Error classes in words: one map for the whole console (``dashboard/labels.py``).
CATEGORY_LABELS = ERROR_CATEGORY_LABELS


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
