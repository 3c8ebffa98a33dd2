"""Admin page: the effective configuration (secrets masked) and the ways into the admin areas."""

from flask import Blueprint, current_app, render_template

from ..access import requires
from ..config import effective_settings
from ..models import Role

bp = Blueprint("settings", __name__)


@bp.route("/")
@requires(Role.admin)
def index():
    return render_template("settings/index.html", settings=effective_settings(current_app.config))
