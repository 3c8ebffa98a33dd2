"""The Users area: search, a user's page (balances, grant timeline, settings, deliveries), the
per-template funnel, and the CSV import of attributes. Viewers read; marketers import."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..access import requires
from ..audit.services import record
from ..extensions import db
from ..grants import services as grants
from ..grants.kinds import lookup_templates
from ..htmx import render_page_or_fragment
from ..models import Role, WechatUser, utcnow
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


@bp.route("/import", methods=["GET", "POST"])
@requires(Role.marketer)
def import_attributes():
    form = ImportForm()
    plan = None
    if form.validate_on_submit():
        upload = form.file.data
        plan = services.parse_import(upload.read())
        if plan.ok:
            result = services.apply_import(plan)
            record(
                "users.imported",
                target_type="wechat_user",
                filename=(upload.filename or "")[:120],
                rows=result.rows,
                created=result.created,
                updated=result.updated,
            )
            db.session.commit()
            flash(
                _(
                    "Imported %(rows)d rows: %(created)d new users, %(updated)d updated.",
                    rows=result.rows,
                    created=result.created,
                    updated=result.updated,
                ),
                "success",
            )
            return redirect(url_for("audience.index"))
    return render_template("audience/import.html", form=form, plan=plan)
