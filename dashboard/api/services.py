"""What the mini-program API does, below the HTTP layer: log a user in, take a grant report once.

Functions add to the session; the view commits once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..audience.services import ensure_user
from ..extensions import db
from ..grants import services as grants
from ..grants.kinds import lookup_templates
from ..models import WechatUser, utcnow
from ..models.grants import GrantBalance, GrantReport, GrantSource
from ..wechat import get_client
from ..wechat.errors import ErrorCategory, WeChatError
from .errors import ApiError
from .idempotency import is_replay
from .validation import GrantReportBody, SettingsBody

log = logging.getLogger(__name__)


def log_in(code: str) -> WechatUser:
    """Exchange a ``wx.login`` code for the user (created on first login) through code2Session.

    The ``session_key`` WeChat returns is dropped here: nothing in Tongzhi needs it.

    :raise ApiError: 401 ``login_code_invalid`` (wrong, used or expired code), 403 ``login_blocked``
        (40226, a high-risk user), 429 (45011, WeChat's per-user limit), 503 ``wechat_unavailable``.
    """
    try:
        session = get_client().code2session(code)
    except WeChatError as error:
        raise _login_error(error) from None
    user = ensure_user(session.openid, session.unionid)
    user.last_login_at = utcnow()
    return user


def _login_error(error: WeChatError) -> ApiError:
    if error.errcode in (40029, 40163, 41008):
        return ApiError(
            401, "login_code_invalid", "The wx.login code is wrong, used or expired: call wx.login again."
        )
    if error.errcode == 40226:
        return ApiError(403, "login_blocked", "WeChat refuses to log this user in (high-risk account).")
    if error.errcode == 45011:
        return ApiError(
            429,
            "rate_limited",
            "WeChat limits logins per user: retry in a minute.",
            headers={"Retry-After": "60"},
        )
    if error.category in (ErrorCategory.CONFIG, ErrorCategory.OTHER):
        log.error("code2Session failed: %s", error)
    else:
        log.warning("code2Session failed: %s", error)
    return ApiError(
        503,
        "wechat_unavailable",
        "WeChat could not be reached to log in: retry shortly.",
        headers={"Retry-After": "5"},
    )


@dataclass(frozen=True)
class ReportOutcome:
    balances: list[GrantBalance]
    replayed: bool


def report_grants(
    user: WechatUser, report: GrantReportBody, body_digest: str, key: str | None
) -> ReportOutcome:
    """Record one forwarded prompt result in the ledger, once per ``Idempotency-Key``.

    The same key with the same body returns the balances again and records nothing; with another body
    it is a 409. Concurrent requests with one key are settled by the unique (user, key) constraint.

    :raise ApiError: 409 ``idempotency_key_reused``.
    """
    if key is not None:
        earlier = _earlier_report(user.id, key)
        if earlier is not None:
            return _replay(user, earlier, body_digest)
    row = GrantReport(
        user_id=user.id,
        idempotency_key=key,
        body_digest=body_digest,
        answers=dict(report.answers),
        scene=report.scene,
        page=report.page,
    )
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        # Another request with this key won the race. Nothing else was written in this transaction
        # yet (the report row is its first write), so rolling it back loses nothing: answer as a replay.
        db.session.rollback()
        earlier = _earlier_report(user.id, key)
        if earlier is None:
            raise
        return _replay(user, earlier, body_digest)
    grants.record_answers(
        user.id,
        report.answers,
        source=GrantSource.client,
        scene=report.scene,
        page=report.page,
        report_id=row.id,
    )
    return ReportOutcome(grants.balances_for(user.id), replayed=False)


def _earlier_report(user_id: int, key: str | None) -> GrantReport | None:
    return db.session.scalar(
        select(GrantReport).where(GrantReport.user_id == user_id, GrantReport.idempotency_key == key)
    )


def _replay(user: WechatUser, earlier: GrantReport, body_digest: str) -> ReportOutcome:
    if not is_replay(earlier.body_digest, body_digest):
        raise ApiError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different report: use a new key for a new prompt.",
        )
    return ReportOutcome(grants.balances_for(user.id), replayed=True)


def report_settings(user: WechatUser, settings: SettingsBody) -> WechatUser:
    return grants.record_settings(user, settings.main_switch, settings.items)


def balance_for_template(user: WechatUser, template_id: str) -> dict:
    """One template's balance; a template neither the user nor the catalog knows is a 404.

    :raise ApiError: 404 ``unknown_template``.
    """
    balance = db.session.scalar(
        select(GrantBalance).where(GrantBalance.user_id == user.id, GrantBalance.template_id == template_id)
    )
    if balance is not None:
        return grants.balance_json(balance)
    info = lookup_templates(db.session, [template_id])[template_id]
    if not info.known:
        raise ApiError(404, "unknown_template", "Neither this user nor the catalog knows this template.")
    return {"template_id": template_id, "kind": info.kind, "credits": 0, "active": False, "known": True}


def max_templates() -> int:
    return int(current_app.config["MP_REPORT_MAX_TEMPLATES"])
