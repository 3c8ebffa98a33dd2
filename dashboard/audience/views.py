"""The Users area: search, a user's page (balances, grant timeline, settings, deliveries), the
per-template funnel, and the CSV import of attributes. Viewers read; marketers import."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    stream_template,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from ..access import requires
from ..audit.services import record
from ..extensions import db
from ..grants import services as grants
from ..grants.kinds import lookup_templates
from ..htmx import render_page_or_fragment
from ..models import Role, WechatUser, utcnow
from ..oa.followers import follower_for_user
from ..storable import db_int
from . import services
from .forms import ImportForm

bp = Blueprint("audience", __name__)
PAGE_SIZE = 50
TIMELINE_SIZE = 50
FUNNEL_PERIODS = {"7": 7, "30": 30, "90": 90, "all": None}


@bp.route("")
@requires(Role.viewer)
def index():
    q = request.args.get("q", "").strip()[:200]
    page = db.paginate(services.search_users(q), per_page=PAGE_SIZE, error_out=False)
    return render_page_or_fragment(
        "audience/index.html",
        "audience/_table.html",
        page=page,
        q=q,
        live=services.live_grant_counts(user.id for user in page.items),
    )


USERS_CSV_HEADER = (
    "user_id",
    "openid",
    "unionid",
    "nickname",
    "tags",
    "attributes",
    "live_grants",
    "main_switch",
    "created_at",
    "last_login_at",
)


@bp.route("/export.csv")
@requires(Role.viewer)
def export_csv():
    """The users the search finds, as CSV streamed in batches (``csv_export``), newest first."""
    import json

    from ..csv_export import csv_response, local_time, operator_zone, stream_csv

    q = request.args.get("q", "").strip()[:200]
    zone = operator_zone()
    u = WechatUser.__table__.c
    statement = services.search_users(q).with_only_columns(
        u.id,
        u.openid,
        u.unionid,
        u.nickname,
        u.tags,
        u.attributes,
        u.main_switch,
        u.created_at,
        u.last_login_at,
    )

    def cells(rows):
        live = services.live_grant_counts(row.id for row in rows)
        for row in rows:
            yield (
                row.id,
                row.openid,
                row.unionid or "",
                row.nickname,
                ";".join(str(tag) for tag in row.tags or []),
                json.dumps(row.attributes or {}, ensure_ascii=False, sort_keys=True),
                live.get(row.id, 0),
                "" if row.main_switch is None else row.main_switch,
                local_time(row.created_at, zone),
                local_time(row.last_login_at, zone),
            )

    return csv_response(stream_csv(USERS_CSV_HEADER, statement, u.id, cells, descending=True), "users.csv")


def _user_or_404(user_id: int) -> WechatUser:
    return db.get_or_404(WechatUser, user_id)


@bp.route("/<int:user_id>")
@requires(Role.viewer)
def detail(user_id: int):
    user = _user_or_404(user_id)
    balances = grants.balances_for(user.id)
    events = services.timeline(user.id, limit=TIMELINE_SIZE)
    return render_template(
        "audience/detail.html",
        user=user,
        balances=balances,
        titles=_titles([b.template_id for b in balances] + [e.template_id for e in events]),
        events=events,
        more=len(events) == TIMELINE_SIZE,
        settings=services.describe_settings(user),
        deliveries=services.deliveries_for(user),
        follower=follower_for_user(user),
    )


@bp.route("/<int:user_id>/timeline")
@requires(Role.viewer)
def timeline(user_id: int):
    """More of the timeline (htmx "show older"); a browser without htmx gets the user's page."""
    user = _user_or_404(user_id)
    before = request.args.get("before", type=db_int)
    events = services.timeline(user.id, before_id=before, limit=TIMELINE_SIZE)
    if not request.headers.get("HX-Request"):
        return redirect(url_for("audience.detail", user_id=user.id))
    return render_template(
        "audience/_timeline_rows.html",
        user=user,
        events=events,
        titles=_titles(e.template_id for e in events),
        more=len(events) == TIMELINE_SIZE,
    )


def _titles(template_ids) -> dict[str, str]:
    return {tid: info.title for tid, info in lookup_templates(db.session, template_ids).items() if info.title}


@bp.route("/funnel")
@requires(Role.viewer)
def funnel():
    period = request.args.get("days", "30")
    if period not in FUNNEL_PERIODS:
        period = "30"
    days = FUNNEL_PERIODS[period]
    since = utcnow() - timedelta(days=days) if days else None
    template_id = request.args.get("template", "").strip()[:64] or None
    return render_page_or_fragment(
        "audience/funnel.html",
        "audience/_funnel.html",
        rows=grants.funnel(since=since, template_id=template_id),
        period=period,
        periods=list(FUNNEL_PERIODS),
        template_id=template_id or "",
    )


@bp.url_value_preprocessor
def _import_body_limit(endpoint: str | None, values: dict | None) -> None:
    """The import takes files up to ``MAX_IMPORT_BYTES``, more than the console's ``MAX_CONTENT_LENGTH``.

    Set here because URL value preprocessors run before every ``before_request`` function, and the CSRF
    check (one of them) parses the form, with whatever limit the request has by then.
    """
    if endpoint == "audience.import_attributes":
        request.max_content_length = services.MAX_IMPORT_BYTES


@bp.errorhandler(RequestEntityTooLarge)
def _file_too_large(error: RequestEntityTooLarge):
    if request.endpoint != "audience.import_attributes":
        raise error  # the application's own 413 page
    form = ImportForm(formdata=None)
    form.file.errors = [
        _(
            "The file is larger than %(size)s: split it into smaller files.",
            size=_size(services.MAX_IMPORT_BYTES),
        )
    ]
    return _import_page(form, status=413)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


def _import_page(form: ImportForm, plan: services.ImportPlan | None = None, status: int = 200):
    return (
        render_template(
            "audience/import.html",
            form=form,
            plan=plan,
            max_size=_size(services.MAX_IMPORT_BYTES),
            max_rows=services.MAX_IMPORT_ROWS,
        ),
        status,
    )


class ImportRun:
    """One checked import, written while the page that shows its progress streams out.

    ``steps()`` writes the plan batch by batch in one transaction and yields the progress after each
    batch; it commits (with the audit event) only after the last one. If anything fails, or the browser
    goes away before the end, nothing is committed.
    """

    def __init__(self, plan: services.ImportPlan, filename: str) -> None:
        self.plan = plan
        self.filename = filename
        self.result: services.ImportResult | None = None
        self.failed = False

    def steps(self) -> Iterator[services.ImportProgress]:
        try:
            progress = None
            for progress in services.import_batches(self.plan):
                yield progress
            assert progress is not None
            result = progress.result()
            record(
                "users.imported",
                target_type="wechat_user",
                filename=self.filename,
                rows=result.rows,
                created=result.created,
                updated=result.updated,
            )
            db.session.commit()
            self.result = result
        except Exception:  # noqa: BLE001 (the page is half sent: say it failed rather than stop mid-page)
            db.session.rollback()
            current_app.logger.exception("The users import failed; nothing was written.")
            self.failed = True


@bp.route("/import", methods=["GET", "POST"])
@requires(Role.marketer)
def import_attributes():
    """Check the whole file first; only a file without problems is written, with a progress display."""
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        plan = services.parse_import(upload.read())
        if not plan.ok:
            return _import_page(form, plan)
        run = ImportRun(plan, (upload.filename or "")[:120])
        response = Response(
            stream_template(
                "audience/import_progress.html", run=run, rows=len(plan.rows), encoding=plan.encoding
            ),
            mimetype="text/html",
        )
        response.headers["X-Accel-Buffering"] = "no"  # a proxy passes each step on as it comes
        return response
    return _import_page(form)


@bp.route("/import/template.csv")
@requires(Role.marketer)
def import_template():
    """An example file to fill in: UTF-8 with a byte-order mark, so Excel opens the Chinese right."""
    return Response(
        services.IMPORT_TEMPLATE_CSV.encode("utf-8-sig"),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=users-import-template.csv"},
    )
