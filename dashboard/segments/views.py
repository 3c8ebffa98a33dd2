"""Segment pages: the list, a segment (count, sample, reach per template), and the filter editor whose
count and sample follow the filter as it is typed (htmx). Viewers read; marketers edit."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..access import requires
from ..audience import segments as filters
from ..audience.reach import reach_by_channel
from ..audit.services import record
from ..config import oa_configured
from ..extensions import db
from ..htmx import render_page_or_fragment
from ..models import Role, Segment, utcnow
from ..models.catalog import MessageTemplate
from . import services
from .forms import SegmentForm

bp = Blueprint("segments", __name__)
SAMPLE_SIZE = 10
STARTER = {"all": []}


def _templates() -> list[tuple[str, str]]:
    rows = db.session.execute(
        select(MessageTemplate.template_id, MessageTemplate.title).order_by(MessageTemplate.title)
    ).all()
    return [(template_id, title) for template_id, title in rows]


def _chosen_template(raw: str | None, templates: list[tuple[str, str]]) -> str | None:
    known = {template_id for template_id, _title in templates}
    return raw if raw in known else None


def preview(doc: dict | None, template_id: str | None, error: str | None = None) -> dict[str, Any]:
    """What ``_preview.html`` shows: the count, a sample, the reach and the reach per channel, or why the
    filter cannot be used. The Official Account's figures only when that channel is on."""
    if doc is None:
        return {"error": error}
    now = utcnow()
    return {
        "error": None,
        "count": filters.count_users(doc, now),
        "sample": filters.sample_users(doc, now, SAMPLE_SIZE),
        "reach": filters.reach(doc, template_id, now) if template_id else None,
        "channel_reach": reach_by_channel(doc, template_id, now) if template_id else None,
        "oa_on": oa_configured(current_app.config),
    }


def _parse(text: str) -> tuple[dict | None, str | None]:
    try:
        return filters.validate_filter(text or ""), None
    except filters.FilterError as problem:
        return None, str(problem)


@bp.route("")
@requires(Role.viewer)
def index():
    segments = db.session.scalars(select(Segment).order_by(Segment.name)).all()
    return render_template("segments/index.html", segments=segments, summary=_summary)


def _summary(doc: dict) -> str:
    return ", ".join(sorted({key for key, _value in filters.leaves_of(doc)})) or _("everyone")


@bp.route("/<int:segment_id>")
@requires(Role.viewer)
def detail(segment_id: int):
    segment = db.get_or_404(Segment, segment_id)
    templates = _templates()
    template_id = _chosen_template(request.args.get("template_id"), templates)
    return render_page_or_fragment(
        "segments/detail.html",
        "segments/_preview.html",
        segment=segment,
        filter_text=json.dumps(segment.filter, ensure_ascii=False, indent=2),
        templates=templates,
        template_id=template_id or "",
        **preview(segment.filter, template_id),
    )


@bp.route("/preview", methods=["POST"])
@requires(Role.marketer)
def live_preview():
    """The editor's live count and sample (htmx): the same fragment the segment's page shows."""
    templates = _templates()
    template_id = _chosen_template(request.form.get("template_id"), templates)
    doc, error = _parse(request.form.get("filter", ""))
    return render_template(
        "segments/_preview.html",
        templates=templates,
        template_id=template_id or "",
        **preview(doc, template_id, error),
    )


def _quick_leaf(form: SegmentForm) -> Any:
    """The condition the "add" controls describe, as a filter leaf (validated with the whole filter)."""
    kind, key, op, value = (
        form.leaf.data,
        (form.leaf_key.data or "").strip(),
        form.leaf_op.data,
        (form.leaf_value.data or "").strip(),
    )

    def number(text: str) -> Any:
        return int(text) if text.isdigit() else text

    if kind == "tag":
        return {"tag": value}
    if kind == "tags_none":
        return {"tags": {"none": [part.strip() for part in value.split(",") if part.strip()]}}
    if kind == "attribute":
        leaf: dict[str, Any] = {"key": key, "op": op}
        if op not in ("set", "unset"):
            leaf["value"] = number(value) if op.startswith("within_") else value
        return {"attribute": leaf}
    if kind == "grant":
        return {"grant": {"template_id": key, "min_credits": number(value or "1")}}
    if kind == "seen_within_days":
        return {"seen_within_days": number(value)}
    if kind in ("has_unionid", "main_switch"):
        return {kind: value.lower() not in ("false", "no", "0", "否")}
    if kind == "granted_in_scene":
        return {"granted_in_scene": value}
    return {str(kind): value}  # not a condition the form offers: validation names it


def _editor(segment: Segment | None):
    form = SegmentForm()
    templates = _templates()
    if request.method == "GET":
        form.name.data = segment.name if segment else ""
        form.filter.data = json.dumps(segment.filter if segment else STARTER, ensure_ascii=False, indent=2)
    csv_errors: list[services.RowError] = []
    problem: str | None = None
    if form.validate_on_submit():
        action = request.form.get("action", "save")
        doc, problem = _parse(form.filter.data or "")
        if doc is not None and action == "add":
            try:
                doc = filters.validate_filter(services.narrow(doc, _quick_leaf(form)))
                form.filter.data = json.dumps(doc, ensure_ascii=False, indent=2)
            except filters.FilterError as error:
                problem = str(error)
        elif doc is not None:
            upload = form.openids_csv.data
            if upload and getattr(upload, "filename", ""):
                parsed = services.parse_openid_csv(upload.read())
                csv_errors = parsed.errors
                if parsed.ok:
                    doc = services.narrow(doc, {"openids": parsed.openids})
            if not csv_errors:
                saved = _save(segment, form, doc)
                if saved is not None:
                    return saved
    doc_now, error_now = _parse(form.filter.data or "")
    return render_template(
        "segments/edit.html",
        form=form,
        segment=segment,
        problem=problem,
        csv_errors=csv_errors,
        templates=templates,
        template_id="",
        **preview(doc_now, None, error_now),
    )


def _save(segment: Segment | None, form: SegmentForm, doc: dict):
    creating = segment is None
    try:
        saved = services.save_segment(segment, form.name.data, doc, current_user.id)
        record("segment.created" if creating else "segment.changed", saved, name=saved.name)
        db.session.commit()
    except services.SegmentRefused as refused:
        db.session.rollback()
        form.name.errors = (
            [*form.name.errors, refused.message] if refused.field == "name" else form.name.errors
        )
        if refused.field != "name":
            form.filter.errors = [*form.filter.errors, f"{refused.field}: {refused.message}"]
        return None
    except IntegrityError:  # another operator saved the same name a moment ago
        db.session.rollback()
        form.name.errors = [*form.name.errors, _("Another segment is called %(name)s.", name=form.name.data)]
        return None
    flash(_("Segment %(name)s saved.", name=saved.name), "success")
    return redirect(url_for("segments.detail", segment_id=saved.id))


@bp.route("/new", methods=["GET", "POST"])
@requires(Role.marketer)
def new():
    return _editor(None)


@bp.route("/<int:segment_id>/edit", methods=["GET", "POST"])
@requires(Role.marketer)
def edit(segment_id: int):
    return _editor(db.get_or_404(Segment, segment_id))
