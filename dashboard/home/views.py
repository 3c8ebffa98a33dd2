"""The home page: real figures from the database, and honest placeholders for what is not built yet."""

from flask import Blueprint, render_template

from ..access import requires
from ..models import Role
from . import services

bp = Blueprint("home", __name__)


@bp.route("/")
@requires(Role.viewer)
def index():
    return render_template("home/index.html", figures=services.home_figures())
