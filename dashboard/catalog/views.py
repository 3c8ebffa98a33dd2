"""Catalog pages at ``/templates``: list, detail with live preview and test send, edit, register by
hand, sync from WeChat, add from the public library. Viewers read; marketers change; admins delete.

Views parse, call a service, commit and respond. A WeChat refusal or an invalid form is shown on the
page (status 200, so htmx swaps it), never as an error page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from ..access import requires
from ..deliveries.services import recent_for_template
from ..extensions import db
from ..htmx import is_htmx, render_page_or_fragment
from ..models import Delivery, DeliveryState, Role, WechatUser
from ..models.catalog import MessageTemplate
from ..wechat.errors import WeChatError
from ..wechat.keywords import max_length, type_label
from . import library, services, sync
from .forms import DeleteForm, LibraryAddForm, ManualTemplateForm, PreviewForm, TemplateEditForm
from .preview import build_preview, initial_values
from .schema import parse_enum_text

bp = Blueprint("catalog", __name__, url_prefix="/templates")

ERRORS = {
    "no_placeholders": _l("No keyword placeholder found: the content must contain e.g. {{thing1.DATA}}."),
    "duplicate_template_id": _l("This template ID is registered already."),
    "bad_scene": _l("Lower-case letters, digits, _ . - only, e.g. order_shipped."),
    "scene_taken": _l("Another template has this business scene."),
    "schema_mismatch": _l("The keywords changed while you were editing; reload the page."),
    "no_drift": _l("This template has no change to review."),
    "template_removed": _l("This template was removed in WeChat; nothing can be sent with it."),
    "bad_kids": _l("Pick 2 to 5 different keywords."),
    "scene_desc_too_long": _l("At most 15 characters."),
    "added_not_listed": _l(
        "WeChat added the template but does not list it yet; sync from WeChat in a moment to register it."
    ),
    "invalid_values": _l("Nothing was sent: correct the values marked on the card first."),
}

KNOWN_USERS_SHOWN = 200


def _error_text(error: services.CatalogError) -> str:
    return str(ERRORS.get(str(error), str(error)))


def _locale() -> str:
    locale = get_locale()
    return locale.language if locale else "en"


def _get_template(template_id: int) -> MessageTemplate:
    return db.get_or_404(MessageTemplate, template_id)


# -- list ------------------------------------------------------------------------------------------------


@bp.route("")
@requires(Role.viewer)
def index():
    args = request.args
    criteria = services.CatalogFilter(
        kind=args.get("kind", ""),
        enabled=args.get("enabled", ""),
        scene=args.get("scene", "").strip(),
        drift=args.get("drift", ""),
        q=args.get("q", "").strip(),
    )
    templates = list(db.session.scalars(services.filtered_templates(criteria)))
    return render_page_or_fragment(
        "catalog/index.html",
        "catalog/_table.html",
        templates=templates,
        duplicates=services.duplicate_titles(),
        args=args,
    )


# -- detail, preview, test send ------------------------------------------------------------------------


def _typed_values(template: MessageTemplate, values: Mapping[str, str]) -> dict[str, str]:
    return {spec["key"]: values.get(f"kw_{spec['key']}", "") for spec in template.keyword_specs}


def _choice(value: str | None, allowed: tuple[str, ...], fallback: str) -> str:
    return value if value in allowed else fallback


def _panel_context(
    template: MessageTemplate,
    typed: dict[str, str],
    form: PreviewForm,
    result: dict[str, Any] | None = None,
    preview=None,
) -> dict[str, Any]:
    lang = _choice(form.lang.data, services.LANGS, template.lang)
    known_users = []
    if current_user.is_authenticated and Role(current_user.role).allows(Role.marketer):
        known_users = db.session.execute(
            select(WechatUser.openid, WechatUser.nickname)
            .order_by(WechatUser.id.desc())
            .limit(KNOWN_USERS_SHOWN)
        ).all()
    return {
        "template": template,
        "typed": typed,
        "form": form,
        "preview": preview or build_preview(template, typed, lang),
        "result": result,
        "known_users": known_users,
        "locale": _locale(),
    }


def _preview_form(template: MessageTemplate, formdata=None) -> PreviewForm:
    if formdata is None:
        return PreviewForm(
            formdata=None,
            lang=template.lang,
            miniprogram_state=template.miniprogram_state,
            page=template.page,
        )
    form = PreviewForm(formdata=formdata)
    form.lang.data = _choice(form.lang.data, services.LANGS, template.lang)
    form.miniprogram_state.data = _choice(
        form.miniprogram_state.data, services.MINIPROGRAM_STATES, template.miniprogram_state
    )
    return form


def _detail_context(template: MessageTemplate, panel: dict[str, Any] | None = None) -> dict[str, Any]:
    context = panel or _panel_context(template, initial_values(template), _preview_form(template))
    return {
        **context,
        "same_title": services.same_title_as(template),
        "recent": recent_for_template(template.template_id),
    }


@bp.route("/<int:template_id>")
@requires(Role.viewer)
def detail(template_id: int):
    template = _get_template(template_id)
    return render_template("catalog/detail.html", **_detail_context(template))


@bp.route("/<int:template_id>/preview")
@requires(Role.viewer)
def preview(template_id: int):
    """The card for the values in the query; with ``fix=<key>`` that key's suggested fix is filled in
    and the whole panel (form and card) comes back."""
    template = _get_template(template_id)
    form = _preview_form(template, request.args)
    typed = _typed_values(template, request.args)
    fix_key = request.args.get("fix", "")
    if fix_key in typed:
        first = build_preview(template, typed, form.lang.data)
        fixed = first.checks[fix_key].fix
        if fixed is not None:
            typed[fix_key] = fixed
    context = _panel_context(template, typed, form)
    if is_htmx():
        page = render_template("catalog/_panel.html" if fix_key else "catalog/_card.html", **context)
    else:
        page = render_template("catalog/detail.html", **_detail_context(template, context))
    response = make_response(page)
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/<int:template_id>/test-send", methods=("POST",))
@requires(Role.marketer)
def test_send(template_id: int):
    template = _get_template(template_id)
    form = _preview_form(template, request.form)
    typed = _typed_values(template, request.form)
    result: dict[str, Any] | None = None
    preview = None
    refused_values = False
    if not form.validate():
        result = {
            "error": _("Correct the fields marked below."),
            "problems": [
                f"{form[name].label.text}: {message}"
                for name, messages in form.errors.items()
                for message in messages
            ],
        }
    elif not (form.openid.data or "").strip():
        form.openid.errors = [_("Type the openid of the user who receives the test.")]
        result = {"error": _("Type the openid of the user who receives the test.")}
    else:
        try:
            preview, delivery = services.send_test(
                template,
                openid=form.openid.data.strip(),
                typed=typed,
                miniprogram_state=form.miniprogram_state.data,
                lang=form.lang.data,
                page=(form.page.data or "").strip(),
                operator_id=current_user.id,
            )
        except services.TestSendRefused as refused:
            preview = refused.preview
            refused_values = True
            result = {"error": _error_text(refused)}
        except services.CatalogError as error:
            result = {"error": _error_text(error)}
        else:
            result = {"delivery": delivery, "outcome": _test_send_outcome(delivery)}
            if not is_htmx():
                if delivery.msgid:
                    flash(_("Test sent: msgid %(msgid)s.", msgid=delivery.msgid), "success")
                elif delivery.state is not DeliveryState.failed:
                    flash(result["outcome"], "error")
                else:
                    flash(
                        _(
                            "WeChat answered errcode %(errcode)s: %(errmsg)s",
                            errcode=delivery.errcode,
                            errmsg=delivery.errmsg,
                        ),
                        "error",
                    )
                return redirect(url_for(".detail", template_id=template.id))
    context = _panel_context(template, typed, form, result=result, preview=preview)
    if is_htmx():
        # The result alone (the send button targets it): replacing the whole panel would wipe what the
        # operator typed while WeChat answered. A refusal brings the card with its marks, out of band.
        return render_template("catalog/_test_send_answer.html", card_oob=refused_values, **context)
    return render_template("catalog/detail.html", **_detail_context(template, context))


TEST_SEND_OUTCOMES = {
    DeliveryState.sent: _l("Sent. WeChat accepted the message."),
    DeliveryState.failed: _l("Not sent. WeChat refused the message."),
    DeliveryState.retry_wait: _l(
        "Not sent yet: WeChat asked to try again later. A worker will send it again; its credit went back meanwhile."
    ),
    DeliveryState.unknown: _l(
        "WeChat's answer was lost: the message may have been delivered. Its credit counts as spent and it is not sent again automatically."
    ),
}
# Why the grant ledger refused a credit (``dashboard.grants.ledger.ReserveOutcome``).
SKIP_REASONS = {
    "no_grant": _l(
        "Not sent: Tongzhi's grant ledger has no credit of this template for this user, so WeChat was not called. The user must accept the template in the mini program first."
    ),
    "budget": _l(
        "Not sent: this user's remaining credits are kept for transactional sends (credit budget), so WeChat was not called."
    ),
}


def _test_send_outcome(delivery: Delivery) -> str:
    if delivery.state is DeliveryState.skipped:
        known = SKIP_REASONS.get(delivery.reason)
        return (
            str(known)
            if known
            else _("Not sent (%(reason)s): WeChat was not called.", reason=delivery.reason)
        )
    return str(TEST_SEND_OUTCOMES.get(delivery.state, delivery.state.value))


# -- edit, review, delete -----------------------------------------------------------------------------


def _edit_form(template: MessageTemplate) -> TemplateEditForm:
    if request.method == "POST":
        return TemplateEditForm()
    data = {
        "page": template.page,
        "miniprogram_state": template.miniprogram_state,
        "lang": template.lang,
        "enabled": template.enabled,
        "scene": template.scene or "",
        "credit_budget": template.credit_budget,
        "keywords": [
            {
                "label": spec["label"],
                "enum_values": "\n".join(spec.get("enum_values") or []),
                "default": spec.get("default") or "",
                "fit": spec.get("fit") or "reject",
            }
            for spec in template.keyword_specs
        ],
    }
    return TemplateEditForm(data=data)


@bp.route("/<int:template_id>/edit")
@requires(Role.marketer)
def edit(template_id: int):
    template = _get_template(template_id)
    return _edit_page(template, _edit_form(template))


def _edit_page(template: MessageTemplate, form: TemplateEditForm):
    rows = list(zip(template.keyword_specs, form.keywords.entries, strict=False))
    return render_template("catalog/edit.html", template=template, form=form, rows=rows)


@bp.route("/<int:template_id>/edit", methods=("POST",))
@requires(Role.marketer)
def update(template_id: int):
    template = _get_template(template_id)
    form = _edit_form(template)
    specs = template.keyword_specs
    if form.validate_on_submit() and len(form.keywords.entries) == len(specs):
        edits = []
        valid = True
        for spec, entry in zip(specs, form.keywords.entries, strict=True):
            enum_values = parse_enum_text(entry.form.enum_values.data)
            problem = services.default_problem(spec, entry.form.default.data, enum_values, _locale())
            if problem:
                entry.form.default.errors = [problem]
                valid = False
            edits.append(
                services.KeywordEdit(
                    label=entry.form.label.data or "",
                    enum_values=enum_values,
                    default=entry.form.default.data,
                    fit=entry.form.fit.data,
                )
            )
        if valid:
            settings = services.TemplateSettings(
                page=(form.page.data or "").strip(),
                miniprogram_state=form.miniprogram_state.data,
                lang=form.lang.data,
                enabled=bool(form.enabled.data),
                scene=form.scene.data or "",
                credit_budget=int(form.credit_budget.data or 0),
            )
            try:
                changed = services.update_template(template, settings, edits)
            except services.CatalogError as error:
                db.session.rollback()
                template = _get_template(template_id)
                target = form[error.field] if error.field in ("scene",) else None
                if target is not None:
                    target.errors = [_error_text(error)]
                else:
                    flash(_error_text(error), "error")
            else:
                db.session.commit()
                flash(
                    _("Template saved.") if changed else _("Nothing to save: no change."),
                    "success" if changed else "info",
                )
                return redirect(url_for(".detail", template_id=template.id))
    elif len(form.keywords.entries) != len(specs):
        flash(_error_text(services.CatalogError("schema_mismatch")), "error")
    return _edit_page(template, form)


@bp.route("/<int:template_id>/review", methods=("POST",))
@requires(Role.marketer)
def review(template_id: int):
    template = _get_template(template_id)
    try:
        services.review_drift(template)
    except services.CatalogError as error:
        flash(_error_text(error), "error")
    else:
        db.session.commit()
        flash(_("Marked as reviewed: the template can be used again."), "success")
    return redirect(url_for(".detail", template_id=template.id))


def _delete_page(template: MessageTemplate, form: DeleteForm):
    return render_template(
        "catalog/delete.html", template=template, form=form, impact=services.deletion_impact(template)
    )


@bp.route("/<int:template_id>/delete")
@requires(Role.admin)
def delete_confirm(template_id: int):
    """What deleting would change, and the box to tick; nothing changes until it is posted ticked."""
    return _delete_page(_get_template(template_id), DeleteForm(formdata=None))


@bp.route("/<int:template_id>/delete", methods=("POST",))
@requires(Role.admin)
def delete(template_id: int):
    """Deleting is an admin's act (marketers and viewers get 403) and needs the ticked confirmation:
    without it the page comes back with a message and nothing changes."""
    template = _get_template(template_id)
    form = DeleteForm()
    if not form.validate_on_submit():
        abort(400)
    if not form.confirm.data:
        form.confirm.errors = [_("Tick the box to confirm the deletion; nothing was deleted.")]
        return _delete_page(template, form)
    title = template.title
    try:
        services.delete_template(template, at_wechat=bool(form.at_wechat.data))
    except WeChatError as error:
        db.session.rollback()
        flash(_wechat_error(error), "error")
        return redirect(url_for(".detail", template_id=template_id))
    db.session.commit()
    flash(_("Template “%(title)s” deleted.", title=title), "success")
    return redirect(url_for(".index"))


def _wechat_error(error: WeChatError) -> str:
    if error.errcode is None:
        return _(
            "WeChat could not be reached (%(category)s): %(errmsg)s",
            category=error.category.value,
            errmsg=error.errmsg,
        )
    return _("WeChat answered errcode %(errcode)s: %(errmsg)s", errcode=error.errcode, errmsg=error.errmsg)


# -- register by hand -------------------------------------------------------------------------------------


@bp.route("/new")
@requires(Role.marketer)
def new():
    return render_template("catalog/new.html", form=ManualTemplateForm())


@bp.route("/new", methods=("POST",))
@requires(Role.marketer)
def create():
    form = ManualTemplateForm()
    if form.validate_on_submit():
        try:
            template = services.register_manual(
                template_id=form.template_id.data,
                title=form.title.data,
                kind=form.kind.data,
                content=form.content.data,
                example=form.example.data or "",
                scene=form.scene.data or "",
            )
        except services.CatalogError as error:
            db.session.rollback()
            field = (
                form[error.field] if error.field in ("template_id", "content", "scene") else form.template_id
            )
            field.errors = [*field.errors, _error_text(error)]
        else:
            db.session.commit()
            flash(_("Template “%(title)s” registered.", title=template.title), "success")
            return redirect(url_for(".detail", template_id=template.id))
    return render_template("catalog/new.html", form=form)


# -- sync from WeChat ---------------------------------------------------------------------------------------


@bp.route("/sync")
@requires(Role.marketer)
def sync_diff():
    """What a sync would change; nothing changes until the operator applies it."""
    try:
        plan = sync.plan_sync(sync.fetch_remote())
    except WeChatError as error:
        return render_template("catalog/sync.html", plan=None, error=_wechat_error(error))
    return render_template("catalog/sync.html", plan=plan, error=None)


@bp.route("/sync", methods=("POST",))
@requires(Role.marketer)
def sync_apply():
    try:
        plan = sync.plan_sync(sync.fetch_remote())
    except WeChatError as error:
        return render_template("catalog/sync.html", plan=None, error=_wechat_error(error))
    if request.form.get("fingerprint") != plan.fingerprint:
        flash(_("WeChat's templates changed since the comparison was shown; here is the new one."), "info")
        return render_template("catalog/sync.html", plan=plan, error=None)
    sync.apply_sync(plan)
    db.session.commit()
    flash(
        _(
            "Sync applied: %(new)d new, %(changed)d changed, %(removed)d removed.",
            new=len(plan.new),
            changed=len(plan.changed),
            removed=len(plan.removed),
        ),
        "success",
    )
    return redirect(url_for(".index"))


# -- add from the public library -------------------------------------------------------------------------


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, type=int)
    return value if value is not None and value >= 0 else None


@bp.route("/library")
@requires(Role.marketer)
def library_index():
    """Pick a category, search its titles (htmx updates the results as you type)."""
    category = _int_arg("category")
    text = request.args.get("q", "").strip()[:40]
    start = _int_arg("start") or 0
    error = None
    categories: list[library.Category] = []
    search = None
    try:
        if not is_htmx():
            categories = library.categories()
        if category is not None:
            search = library.search_titles(category, text, start)
    except WeChatError as wechat_error:
        error = _wechat_error(wechat_error)
    return render_page_or_fragment(
        "catalog/library.html",
        "catalog/_library_titles.html",
        categories=categories,
        category=category,
        text=text,
        search=search,
        error=error,
    )


def _library_title_context(tid: int, form: LibraryAddForm) -> dict[str, Any]:
    keywords = library.keywords(tid)
    form.set_keywords(keywords)
    return {
        "tid": tid,
        "title": request.args.get("title", "")[:100],
        "kind": request.args.get("kind", ""),
        "keywords": keywords,
        "form": form,
    }


@bp.route("/library/<int:tid>")
@requires(Role.marketer)
def library_title(tid: int):
    """Pick 2–5 keywords of a public title, in the order the card shows them."""
    form = LibraryAddForm()
    try:
        context = _library_title_context(tid, form)
    except WeChatError as error:
        return render_template("catalog/library_title.html", tid=tid, error=_wechat_error(error), form=form)
    return render_template("catalog/library_title.html", error=None, **context)


@bp.route("/library/<int:tid>", methods=("POST",))
@requires(Role.marketer)
def library_add(tid: int):
    form = LibraryAddForm()
    try:
        context = _library_title_context(tid, form)
    except WeChatError as error:
        return render_template("catalog/library_title.html", tid=tid, error=_wechat_error(error), form=form)
    if form.validate_on_submit():
        try:
            template = library.add_from_library(tid, form.chosen(), (form.scene_desc.data or "").strip())
        except services.CatalogError as error:
            db.session.rollback()
            field = form[error.field] if error.field in ("kid1", "scene_desc") else None
            if field is not None:
                field.errors = [*field.errors, _error_text(error)]
            else:
                return render_template("catalog/library_title.html", error=_error_text(error), **context)
        except WeChatError as error:
            db.session.rollback()
            return render_template("catalog/library_title.html", error=_wechat_error(error), **context)
        else:
            db.session.commit()
            flash(_("Template “%(title)s” added in WeChat and registered.", title=template.title), "success")
            return redirect(url_for(".detail", template_id=template.id))
    return render_template("catalog/library_title.html", error=None, **context)


def drift_fields(template_or_note: Any) -> list[str]:
    """The fields a ``changed`` drift note lists, for templates to translate."""
    note = getattr(template_or_note, "drift_note", template_or_note) or ""
    return [part for part in str(note).split(",") if part]


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "type_label": type_label,
        "max_length": max_length,
        "drift_fields": drift_fields,
        "locale": _locale(),
    }
