"""What the mini-program API does, below the HTTP layer: log a user in, take a grant report once.

Functions add to the session; the view commits once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..audience.services import ensure_user
from ..dispatch.write_lock import writer_queue
from ..extensions import db
from ..grants import reports as grant_reports
from ..grants import services as grants
from ..grants.kinds import lookup_templates
from ..models import WechatUser, utcnow
from ..models.grants import GrantBalance, GrantReport, GrantSource
from ..wechat import get_client
from ..wechat.errors import ErrorCategory, WeChatError
from .errors import ApiError
from .idempotency import is_replay
from .tokens import TokenUser, user_gone
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
    balances: list  # GrantBalance rows or reports.BalanceState values (same attributes)
    replayed: bool


@dataclass(frozen=True)
class ReportPlan:
    """A report read and decided (``plan_report``), waiting to be written (``write_report``)."""

    user_id: int
    report: GrantReportBody
    body_digest: str
    key: str | None
    policy: grants.LedgerPolicy
    answers: grant_reports.AnswerPlan
    dialect: str  # the database's (the writes differ)
    autocommit: bool  # read outside a transaction (PostgreSQL): write in one statement, or begin one


def plan_report(
    user: WechatUser | TokenUser, report: GrantReportBody, body_digest: str, key: str | None
) -> ReportPlan:
    """The reads of a grant report (the user still there, the catalog, the balances and pairing
    candidates, in one query); no write.

    :raise ApiError: 401 ``token_invalid`` when the user is no longer there.
    """
    policy = grants.LedgerPolicy.from_config()
    # On PostgreSQL a fast report is one read and one write, each atomic by itself: outside an explicit
    # transaction they are two round trips instead of four (BEGIN and COMMIT). Only when this request
    # has not used the session yet (the option applies to the connection the session is about to take).
    dialect = db.session.get_bind().dialect.name
    autocommit = dialect == "postgresql" and not db.session().in_transaction()
    if autocommit:
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        answers = grant_reports.plan_answers(
            db.session,
            user.id,
            report.answers,
            openid=user.openid,
            source=GrantSource.client,
            policy=policy,
            scene=report.scene,
            page=report.page,
        )
    except grant_reports.UnknownUser:
        raise user_gone() from None
    return ReportPlan(user.id, report, body_digest, key, policy, answers, dialect, autocommit)


@contextlib.contextmanager
def report_writes() -> Iterator[None]:
    """Hold the writers' queue (SQLite file) around a report's writes and commit; roll back on error.

    The dispatch path's queue (``dashboard.dispatch.write_lock``): a waiting worker gets the lock the
    moment the holder releases it, instead of after one of SQLite's busy-handler sleeps.
    """
    with writer_queue(db.engine):
        try:
            yield
        except BaseException:
            db.session.rollback()
            raise


@functools.cache
def _insert_report(dialect: str):
    """The report row, or nothing when the user already used the key. Built once per dialect: building
    an insert construct costs more than running it (issue 13)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = GrantReport.__table__
    return (
        insert(table)
        .values({name: sa.bindparam(name, type_=table.c[name].type) for name in grant_reports.REPORT_COLUMNS})
        .on_conflict_do_nothing(index_elements=["user_id", "idempotency_key"])
        .returning(table.c.id)
    )


def write_report(plan: ReportPlan) -> ReportOutcome:
    """Record one forwarded prompt result in the ledger, once per ``Idempotency-Key``.

    The report row goes first, as an insert that does nothing when the user already used the key: the
    same key with the same body then returns the balances again and records nothing; with another body
    it is a 409. Then the balances and events (``grants.reports``): on SQLite one statement each, on
    PostgreSQL all three in one statement. When a balance changed since ``plan_report`` read it,
    nothing is kept and the report is recorded the locking way (``grants.record_answers``).

    :raise ApiError: 409 ``idempotency_key_reused``.
    """
    if not plan.answers.fast:
        return _report_locking(plan)
    report = plan.report
    row = {
        "user_id": plan.user_id,
        "idempotency_key": plan.key,
        "body_digest": plan.body_digest,
        "answers": dict(report.answers),
        "scene": report.scene,
        "page": report.page,
        "created_at": utcnow(),
    }
    if plan.dialect == "postgresql":  # one round trip for the report, the balances and the events
        try:
            report_id, balances = grant_reports.apply_report_in_one_statement(
                db.session, plan.answers, plan.policy, row
            )
        except grant_reports.StaleRead:
            db.session.rollback()
            return _report_locking(plan)
    else:  # in-process: three statements cost no round trips
        report_id = db.session.connection().execute(_insert_report(plan.dialect), row).scalar()
        balances = None
        if report_id is not None:
            balances = grant_reports.apply_answers(db.session, plan.answers, plan.policy, report_id=report_id)
    if report_id is None:
        earlier = _earlier_report(plan.user_id, plan.key)
        if earlier is None:  # pragma: no cover - the conflicting row is committed when we see it
            raise RuntimeError("grant report conflict without a row")
        return _replay(plan.user_id, earlier, plan.body_digest)
    if balances is None:
        # A balance changed between the reads and the lock: nothing of ours is worth keeping.
        db.session.rollback()
        return _report_locking(plan)
    return ReportOutcome(balances, replayed=False)


def report_grants(
    user: WechatUser | TokenUser, report: GrantReportBody, body_digest: str, key: str | None
) -> ReportOutcome:
    """``plan_report`` then ``write_report`` (without the writers' queue; the view uses both)."""
    return write_report(plan_report(user, report, body_digest, key))


def _report_locking(plan: ReportPlan) -> ReportOutcome:
    """The report recorded balance by balance, each locked before it is read."""
    if plan.autocommit:
        # The locks must hold until the commit: give the connection back, so the session takes a new
        # one in a transaction.
        db.session.rollback()
    report = plan.report
    key = plan.key
    if key is not None:
        earlier = _earlier_report(plan.user_id, key)
        if earlier is not None:
            return _replay(plan.user_id, earlier, plan.body_digest)
    row = GrantReport(
        user_id=plan.user_id,
        idempotency_key=key,
        body_digest=plan.body_digest,
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
        earlier = _earlier_report(plan.user_id, key)
        if earlier is None:
            raise
        return _replay(plan.user_id, earlier, plan.body_digest)
    grants.record_answers(
        plan.user_id,
        report.answers,
        source=GrantSource.client,
        scene=report.scene,
        page=report.page,
        report_id=row.id,
        policy=plan.policy,
    )
    return ReportOutcome(grants.balances_for(plan.user_id), replayed=False)


def _earlier_report(user_id: int, key: str | None) -> GrantReport | None:
    return db.session.scalar(
        select(GrantReport).where(GrantReport.user_id == user_id, GrantReport.idempotency_key == key)
    )


def _replay(user_id: int, earlier: GrantReport, body_digest: str) -> ReportOutcome:
    if not is_replay(earlier.body_digest, body_digest):
        raise ApiError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different report: use a new key for a new prompt.",
        )
    return ReportOutcome(grants.balances_for(user_id), replayed=True)


def report_settings(user: WechatUser, settings: SettingsBody) -> WechatUser:
    return grants.record_settings(user, settings.main_switch, settings.items)


def balance_for_template(user: WechatUser | TokenUser, template_id: str) -> dict:
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
