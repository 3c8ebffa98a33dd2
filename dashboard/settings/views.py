"""Admin page: the effective configuration (secrets masked) and the WeChat connection check."""

from flask import Blueprint, current_app, render_template

from ..access import requires
from ..config import effective_settings
from ..models import Role
from ..wechat.check import run_check

bp = Blueprint("settings", __name__)


@bp.route("/")
@requires(Role.admin)
def index():
    return render_template("settings/index.html", settings=effective_settings(current_app.config), check=None)


@bp.route("/wechat-check", methods=("POST",))
@requires(Role.admin)
def wechat_check():
    """Run the same check as ``flask wechat-check`` and show its answer in place."""
    return render_template("settings/_wechat_check.html", check=run_check())
