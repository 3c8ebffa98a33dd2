"""Templates → Official Account: the OA's template messages, their card preview and a test send.

``/templates/official-account``: the list (viewers), sync (marketers); ``/<id>``: the detail with the
live card in the OA's look (htmx: typing a value re-renders the card and shows the rule it breaks, as
the mini-program catalog's preview does); ``/<id>/test-send``: one message to a follower (marketers).
When the channel is off every page says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from ..access import can, requires
from ..config import oa_configured
from ..extensions import db
from ..htmx import is_htmx
from ..models import Role
from ..models.oa_template import OaTemplate
from ..wechat.errors import WeChatError
from ..wechat.keywords import OFFICIAL_ACCOUNT_RULES, max_length, type_label
from . import templates as services

bp = Blueprint("oa_templates", __name__, url_prefix="/templates/official-account")

PAGEPATH_MAX = 512

REFUSALS = {
    "not_follower": _l(
        "Not sent: this openid is not a follower of the Official Account as far as Tongzhi knows. "
        "Only followers can receive its template messages; pick one from the list (or sync the followers)."
    ),
    "invalid_values": _l("Nothing was sent: correct the values marked on the card first."),
    "removed": _l("This template was removed in WeChat; nothing can be sent with it."),
    "not_configured": _l("The Official Account channel is off: nothing can be sent."),
    "no_openid": _l("Choose the follower who receives the test."),
    "bad_pagepath": _l("The page is at most 512 characters, without spaces."),
}
OUTCOMES = {
    "sent": _l("Sent. WeChat accepted the message."),
    "failed": _l("Not sent. WeChat refused the message."),
    "unknown": _l(
        "WeChat's answer was lost: the message may have been delivered. A resend within 10 minutes with "
        "the same client_msg_id would not be delivered twice."
    ),
    "retry_wait": _l("Not sent yet: WeChat could not take it now. A worker will try again."),
    "skipped": _l("Not sent: the Official Account cannot reach this person now."),
}
ERRCODE_WORDS = {
    43004: _l("This person does not follow the Official Account (any more), so WeChat did not deliver it."),
    40003: _l("WeChat does not know this openid for the Official Account."),
    40037: _l("WeChat does not know this template: sync the templates."),
    47003: _l("WeChat refused a value: it breaks the template's rules."),
    40013: _l("The mini-program is not linked to the Official Account."),
    40165: _l("The page is not in the published mini-program."),
}


def _locale() -> str:
    locale = get_locale()
    return locale.language if locale else "en"


def _get(template_id: int) -> OaTemplate:
    return db.get_or_404(OaTemplate, template_id)


def _channel_on() -> bool:
    return oa_configured(current_app.config)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "oa_type_label": type_label,
        "oa_max_length": lambda t: max_length(t, OFFICIAL_ACCOUNT_RULES),
        "locale": _locale(),
        "channel_on": _channel_on(),
    }


@bp.route("")
@requires(Role.viewer)
def index():
    templates = list(db.session.scalars(select(OaTemplate).order_by(OaTemplate.drift, OaTemplate.title)))
    return render_template("oa_templates/index.html", templates=templates)


@bp.route("/sync", methods=("POST",))
@requires(Role.marketer)
def sync():
    if not _channel_on():
        flash(_("The Official Account channel is off: nothing to sync."), "error")
        return redirect(url_for(".index"))
    try:
        result = services.sync_oa_templates()
    except WeChatError as error:
        db.session.rollback()
        code = "—" if error.errcode is None else str(error.errcode)
        flash(_("Sync failed: WeChat answered errcode %(errcode)s.", errcode=code), "error")
        return redirect(url_for(".index"))
    db.session.commit()
    flash(
        _(
            "Synced: %(new)d new, %(changed)d changed, %(removed)d removed, %(unchanged)d unchanged.",
            new=len(result.new),
            changed=len(result.changed),
            removed=len(result.removed),
            unchanged=result.unchanged,
        ),
        "success",
    )
    return redirect(url_for(".index"))


def _typed(template: OaTemplate, values: Mapping[str, str]) -> dict[str, str]:
    return {spec["key"]: str(values.get(f"kw_{spec['key']}", "")) for spec in template.keywords or []}


def _context(
    template: OaTemplate,
    typed: dict[str, str],
    *,
    openid: str = "",
    pagepath: str = "",
    result: dict[str, Any] | None = None,
    preview: services.OaPreview | None = None,
) -> dict[str, Any]:
    return {
        "template": template,
        "typed": typed,
        "openid": openid,
        "pagepath": pagepath,
        "preview": preview or services.build_preview(template, typed),
        "result": result,
        "followers": services.followers_to_choose() if can(Role.marketer) else [],
        "classic": services.is_classic(template),
    }


@bp.route("/<int:template_id>")
@requires(Role.viewer)
def detail(template_id: int):
    template = _get(template_id)
    return render_template(
        "oa_templates/detail.html", **_context(template, services.example_values(template))
    )


@bp.route("/<int:template_id>/preview")
@requires(Role.viewer)
def preview(template_id: int):
    """The card for the values in the query (htmx: the card alone)."""
    template = _get(template_id)
    context = _context(template, _typed(template, request.args))
    page = render_template("oa_templates/_card.html" if is_htmx() else "oa_templates/detail.html", **context)
    response = make_response(page)
    response.headers.add("Vary", "HX-Request")
    return response


@bp.route("/<int:template_id>/review", methods=("POST",))
@requires(Role.marketer)
def review(template_id: int):
    template = _get(template_id)
    if services.mark_reviewed(template):
        db.session.commit()
        flash(_("Marked as reviewed: the template can be used again."), "success")
    return redirect(url_for(".detail", template_id=template.id))


def _outcome_words(result: services.OaTestResult) -> dict[str, Any]:
    words = ERRCODE_WORDS.get(result.errcode or 0)
    outcome = OUTCOMES.get(result.state, OUTCOMES["failed"])
    return {"send": result, "outcome": str(outcome), "errcode_words": str(words or "")}


@bp.route("/<int:template_id>/test-send", methods=("POST",))
@requires(Role.marketer)
def test_send(template_id: int):
    template = _get(template_id)
    typed = _typed(template, request.form)
    openid = (request.form.get("openid") or "").strip()
    pagepath = (request.form.get("pagepath") or "").strip()
    preview = None
    refused_values = False
    if not openid:
        result: dict[str, Any] = {"error": str(REFUSALS["no_openid"])}
    elif len(pagepath) > PAGEPATH_MAX or any(ch.isspace() for ch in pagepath):
        result = {"error": str(REFUSALS["bad_pagepath"])}
    elif not _channel_on():
        result = {"error": str(REFUSALS["not_configured"])}
    else:
        try:
            preview, sent = services.send_test(
                template, openid=openid, typed=typed, pagepath=pagepath, operator_id=current_user.id
            )
        except services.OaTestRefused as refused:
            preview = refused.preview
            refused_values = refused.reason == "invalid_values"
            result = {"error": str(REFUSALS[refused.reason])}
        else:
            db.session.commit()  # the audit event; the delivery was committed by the send
            result = _outcome_words(sent)
    context = _context(template, typed, openid=openid, pagepath=pagepath, result=result, preview=preview)
    if is_htmx():
        return render_template("oa_templates/_test_send_answer.html", card_oob=refused_values, **context)
    if result.get("error"):
        flash(result["error"], "error")
    elif result["send"].state == "sent":
        flash(_("Test sent: msgid %(msgid)s.", msgid=result["send"].msgid), "success")
    else:
        flash(" ".join(filter(None, [result["outcome"], result["errcode_words"]])), "error")
    return redirect(url_for(".detail", template_id=template.id))
