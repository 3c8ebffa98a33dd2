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
    criteria = _criteria(args)
    page = db.paginate(services.filtered_events(criteria), per_page=PAGE_SIZE, error_out=False)
    return render_page_or_fragment(
        "audit/index.html",
        "audit/_table.html",
        page=page,
        actions=services.known_actions(),
        args=args,
        describe_target=services.describe_target,
        action_label=services.action_label,
        detail_items=services.detail_items,
    )


def _criteria(args) -> services.AuditFilter:
    return services.AuditFilter(
        action=args.get("action", "").strip(),
        actor=args.get("actor", "").strip(),
        target=args.get("target", "").strip(),
        since=_local_date(args.get("since")),
        until=_local_date(args.get("until"), end=True),
    )


AUDIT_CSV_HEADER = (
    "event_id",
    "at",
    "actor_email",
    "action",
    "action_label",
    "target_type",
    "target_id",
    "detail",
    "ip",
)


@bp.route("/export.csv")
@requires(Role.admin)
def export_csv():
    """The filtered log as CSV streamed in batches (``csv_export``), newest first."""
    import json

    from ..csv_export import csv_response, local_time, operator_zone, stream_csv
    from ..models import AuditEvent

    zone = operator_zone()
    e = AuditEvent.__table__.c
    statement = services.filtered_events(_criteria(request.args)).with_only_columns(
        e.id, e.at, e.actor_email, e.action, e.target_type, e.target_id, e.detail, e.ip
    )

    def cells(rows):
        for row in rows:
            yield (
                row.id,
                local_time(row.at, zone),
                row.actor_email,
                row.action,
                services.action_label(row.action),
                row.target_type,
                row.target_id,
                json.dumps(row.detail or {}, ensure_ascii=False, sort_keys=True, default=str),
                row.ip,
            )

    return csv_response(
        stream_csv(AUDIT_CSV_HEADER, statement, e.id, cells, descending=True), "audit-log.csv"
    )
