"""Admin page: browse and filter the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, request

from ..access import requires
from ..extensions import db
from ..htmx import render_page_or_fragment
from ..models import Role
from . import services

bp = Blueprint("audit", __name__)
PAGE_SIZE = 50


def _local_date(raw: str | None, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` typed in the operator's zone, as the UTC instant starting (or ending) that day."""
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")
    except ValueError:
        return None
    start = day.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
    return start + timedelta(days=1) if end else start


@bp.route("/")
@requires(Role.admin)
def index():
    args = request.args
    criteria = services.AuditFilter(
        action=args.get("action", "").strip(),
        actor=args.get("actor", "").strip(),
        target=args.get("target", "").strip(),
        since=_local_date(args.get("since")),
        until=_local_date(args.get("until"), end=True),
    )
    page = db.paginate(services.filtered_events(criteria), per_page=PAGE_SIZE, error_out=False)
    return render_page_or_fragment(
        "audit/index.html",
        "audit/_table.html",
        page=page,
        actions=services.known_actions(),
        args=args,
    )
