"""What a campaign has done so far and how it ended, from its delivery rows, always by SQL ``GROUP BY``:
no delivery row is loaded into Python to count it.

- ``figures``: the progress (done / recipients), sent (and by the channel used: subscribe message or
  Official Account), failed by error class and errcode, skipped by reason, unknown, remaining, opens; the current rate (answered sends a second over the last minute) and
  the ETA, or what holds the campaign instead (quiet hours, a pause, the schedule).
- ``error_class``: a failed row's error class (``wechat.errors.ErrorCategory``) as one SQL expression,
  shared by the report, the delivery log's filter, its CSV and ``retry`` (so they always agree).
- ``LogFilter`` / ``log_query`` / ``csv_rows``: the campaign's delivery log, filtered, paged or streamed.
- The words for classes, skip reasons and holds, in the operator's language.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from .. import csv_export
from ..dispatch.campaign_gate import in_quiet_hours
from ..extensions import db
from ..labels import ERROR_CATEGORY_LABELS, SKIP_REASON_LABELS, UNKNOWN_REASON_LABELS
from ..models import Delivery, DeliveryAttempt, DeliveryState, DispatchState
from ..models.campaign import TEMPLATE_PROBLEMS, Campaign, CampaignState
from ..models.delivery import SENDING_CHANNELS
from ..models.dispatch import DISPATCH_STATE_ID
from ..models.types import utcnow
from ..wechat.errors import CATEGORY_BY_CODE, ErrorCategory, category_for

RATE_WINDOW = timedelta(seconds=60)
OPEN_STATES = (DeliveryState.pending.value, DeliveryState.retry_wait.value, DeliveryState.sending.value)
ANSWERED = (DeliveryState.sent.value, DeliveryState.failed.value, DeliveryState.unknown.value)
CSV_BATCH = csv_export.BATCH

# A failed row's error class. The dispatch outcomes (``dispatch.outcomes.decide``) write the class itself
# as the reason for most failures; a row that gave up after its retries says ``gave_up`` and its class is
# that of its errcode, or of its last attempt when WeChat never answered (a network error).
_CLASS_REASONS = tuple(
    c.value for c in ErrorCategory if c not in (ErrorCategory.UNKNOWN,)
)  # no_grant, recipient, ... and transient/token/quota/config
# The classes worth sending again (``retry``): nothing about the message or the user was wrong.
RETRYABLE_CLASSES = (
    ErrorCategory.TRANSIENT.value,
    ErrorCategory.TOKEN.value,
    ErrorCategory.QUOTA.value,
    ErrorCategory.CONFIG.value,
)

# The same words as the home page's "failures by cause": one map for the console (``dashboard/labels.py``).
CLASS_LABELS = {k: v for k, v in ERROR_CATEGORY_LABELS.items() if k not in ("unknown", "gave_up")}
SKIP_LABELS = SKIP_REASON_LABELS
UNKNOWN_LABELS = UNKNOWN_REASON_LABELS
# The same msgids as ``models.campaign.HOLD_REASONS`` (the API's English sentences).
HOLD_TEXT = {
    "operator": _l("Paused by an operator."),
    "quota": _l("WeChat's daily sending quota is used up (45009)."),
    "failure_rate": _l("%(failed)s of %(answered)s sends failed, more than the %(threshold)s%% allowed."),
    "template": _l("Waiting: the template cannot be used now (%(why)s)."),
    "segment": _l("Waiting: the campaign's segment no longer exists."),
    "values": _l("Waiting: a keyword value breaks its rule (%(key)s)."),
    # Why a run of a recurring campaign was missed (campaigns.recurring).
    "late": _l("Missed: nothing was running within %(limit)s minutes of its time."),
    "superseded": _l("Missed: a later occurrence ran in its place."),
}
HOLD_TEXT |= {
    "oa_off": _l("Waiting: the Official Account channel is off."),
    "oa_template": _l("Waiting: the Official Account template cannot be used now (%(why)s)."),
}
# A sent row by the channel it went out on (``Delivery.channel_used``).
SENT_BY_CHANNEL_LABELS = {
    "mp_subscribe": _l("Sent via subscribe message"),
    "oa_template": _l("Sent via Official Account"),
}
TEMPLATE_PROBLEM_TEXT = {
    "unknown": _l("not in the catalog"),
    "removed": _l("removed at WeChat"),
    "disabled": _l("disabled"),
    "changed": _l("changed at WeChat"),
}
assert set(TEMPLATE_PROBLEM_TEXT) == set(TEMPLATE_PROBLEMS)


def class_label(klass: str, errcode: int | None = None) -> str:
    """``内容不合规 (47003)``: the class in words, with WeChat's errcode when there is one."""
    words = str(CLASS_LABELS.get(klass, CLASS_LABELS["other"]))
    return f"{words} ({errcode})" if errcode is not None else words


def skip_label(reason: str) -> str:
    return str(SKIP_LABELS.get(reason) or _("Other reason"))


def unknown_label(reason: str) -> str:
    return str(UNKNOWN_LABELS.get(reason) or UNKNOWN_LABELS["unknown"])


def hold_text(campaign: Campaign) -> str:
    """Why the campaign is paused or waits, in the operator's language ("" when nothing holds it)."""
    code = campaign.hold_code
    if not code:
        return ""
    text = HOLD_TEXT.get(code)
    if text is None:
        return campaign.pause_reason
    args = dict(campaign.hold_args or {})
    if code in ("template", "oa_template"):
        why = str(args.get("why", ""))
        args["why"] = str(TEMPLATE_PROBLEM_TEXT.get(why, why))
    try:
        return str(text) % args if args else str(text)
    except (KeyError, TypeError, ValueError):
        return campaign.pause_reason


def row_class(delivery: Delivery) -> str:
    """``error_class`` for one loaded row (a page of the log), by the same rules."""
    if delivery.reason in _CLASS_REASONS:
        return delivery.reason
    if delivery.errcode is not None:
        return category_for(delivery.errcode).value
    if delivery.reason == "gave_up":
        last = delivery.history[-1].category if delivery.history else ""
        return last or ErrorCategory.TRANSIENT.value
    return ErrorCategory.OTHER.value


def row_outcome(delivery: Delivery) -> str:
    """What became of one row, in words: the error class and errcode, the skip reason, the lost answer."""
    state = delivery.state.value
    if state == "failed":
        return class_label(row_class(delivery), delivery.errcode)
    if state == "skipped":
        return skip_label(delivery.reason)
    if state == "unknown":
        return unknown_label(delivery.reason)
    if state == "sent" and delivery.reason == "sent_event":
        return _("confirmed by WeChat's delivery event")
    return ""


# -- the error class, in SQL ---------------------------------------------------------------------------


def error_class() -> sa.ColumnElement[str]:
    """The error class of a failed delivery row, as SQL over ``delivery`` (meaningless for other states)."""
    d = Delivery.__table__.c
    a = DeliveryAttempt.__table__.c
    by_code = sa.case(
        {code: category.value for code, category in CATEGORY_BY_CODE.items()},
        value=d.errcode,
        else_=ErrorCategory.OTHER.value,
    )
    last_attempt = (
        sa.select(sa.func.nullif(a.category, ""))
        .where(a.delivery_id == d.id, a.number == d.attempts)
        .order_by(a.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.case(
        (d.reason.in_(_CLASS_REASONS), d.reason),
        (d.errcode.is_not(None), by_code),
        (d.reason == "gave_up", sa.func.coalesce(last_attempt, ErrorCategory.TRANSIENT.value)),
        else_=ErrorCategory.OTHER.value,
    )


def retryable() -> sa.ColumnElement[bool]:
    """Failed rows whose class may pass if sent again (never unknown, sent, no_grant, content, ...)."""
    d = Delivery.__table__.c
    return sa.and_(d.state == DeliveryState.failed.value, error_class().in_(RETRYABLE_CLASSES))


# -- the figures ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One bar of the report: a count under a name (``kind`` sent / failed / skipped / unknown / pending)."""

    kind: str
    key: str
    errcode: int | None
    count: int

    @property
    def label(self) -> str:
        if self.kind == "failed":
            return class_label(self.key, self.errcode)
        if self.kind == "skipped":
            return skip_label(self.key)
        if self.kind == "unknown":
            return unknown_label(self.key)
        if self.kind == "sent" and self.key in SENT_BY_CHANNEL_LABELS:
            return str(SENT_BY_CHANNEL_LABELS[self.key])
        from ..labels import state_label

        return state_label(self.kind)


@dataclass
class Figures:
    recipients: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unknown: int = 0
    opens: int = 0
    failed_by: list[Outcome] = field(default_factory=list)  # by class and errcode, largest first
    skipped_by: list[Outcome] = field(default_factory=list)  # by reason
    unknown_by: list[Outcome] = field(default_factory=list)
    # Sent rows by the channel used (``mp_subscribe``, ``oa_template``), every sending channel listed.
    sent_by_channel: dict[str, int] = field(default_factory=dict)
    retryable: int = 0
    recent: int = 0  # answered sends in the rate window
    window_seconds: float = 0.0
    # What the ETA line says: "eta" (with ``eta_seconds``), "measuring", "quiet" (until ``until``),
    # "quota" (until ``until``), "paused", "schedule" (at ``until``), "held" (the campaign's hold), "".
    status: str = ""
    eta_seconds: int | None = None
    until: datetime | None = None
    until_local: str = ""

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped + self.unknown

    @property
    def total(self) -> int:
        return max(self.recipients, self.done + self.pending)

    @property
    def percent(self) -> int:
        """Whole percent done (100 only when nothing is left)."""
        if not self.total:
            return 0
        if self.pending == 0:
            return 100
        return min(99, self.done * 100 // self.total)

    @property
    def rate(self) -> float:
        """Answered sends a second over the rate window."""
        if not self.window_seconds:
            return 0.0
        return self.recent / self.window_seconds

    @property
    def open_rate(self) -> float | None:
        """Opens per sent message, as a fraction; None before anything was sent."""
        return self.opens / self.sent if self.sent else None

    @property
    def outcomes(self) -> list[Outcome]:
        """Every bar of the report chart: sent, each failure class and errcode, each skip reason, unknown."""
        if self.split_by_channel:
            bars = [Outcome("sent", key, None, n) for key, n in self.sent_by_channel.items() if n]
        else:
            bars = [Outcome("sent", "sent", None, self.sent)] if self.sent else []
        return bars + self.failed_by + self.skipped_by + self.unknown_by

    @property
    def split_by_channel(self) -> bool:
        """Whether anything went out through the Official Account: the sends are then shown by channel."""
        return bool(self.sent_by_channel.get("oa_template"))


def figures(campaign: Campaign, now: datetime | None = None) -> Figures:
    """Everything the progress card and the report show, in two ``GROUP BY`` queries (rows and opens)."""
    now = now or utcnow()
    d = Delivery.__table__.c
    since = now - RATE_WINDOW
    answered_at = sa.func.coalesce(d.sent_at, d.updated_at)
    per_row = (
        sa.select(
            d.state.label("state"),
            d.reason.label("reason"),
            sa.case((d.state == DeliveryState.failed.value, d.errcode), else_=None).label("errcode"),
            sa.case((d.state == DeliveryState.failed.value, error_class()), else_="").label("klass"),
            sa.case((sa.and_(d.state.in_(ANSWERED), answered_at >= since), 1), else_=0).label("recent"),
            sa.case((d.opened_at.is_not(None), 1), else_=0).label("opened"),
            # The channel a sent row went out on; a row sent before channels existed has none: its
            # subscribe message.
            sa.case(
                (d.state == DeliveryState.sent.value, sa.func.coalesce(d.channel_used, "mp_subscribe")),
                else_="",
            ).label("via"),
        )
        .where(d.campaign_id == campaign.id)
        .subquery()
    )
    r = per_row.c
    rows = db.session.execute(
        sa.select(
            r.state,
            r.reason,
            r.errcode,
            r.klass,
            sa.func.count(),
            sa.func.sum(r.recent),
            sa.func.sum(r.opened),
            r.via,
        ).group_by(r.state, r.reason, r.errcode, r.klass, r.via)
    ).all()
    result = Figures(recipients=campaign.recipients)
    result.sent_by_channel = {channel.value: 0 for channel in SENDING_CHANNELS}
    failed: dict[tuple[str, int | None], int] = {}
    skipped: dict[str, int] = {}
    unknown: dict[str, int] = {}
    for state, reason, errcode, klass, count, recent, opened, via in rows:
        state = str(getattr(state, "value", state))
        result.recent += int(recent or 0)
        result.opens += int(opened or 0)
        if state in OPEN_STATES:
            result.pending += count
        elif state == "sent":
            result.sent += count
            result.sent_by_channel[via] = result.sent_by_channel.get(via, 0) + count
        elif state == "failed":
            result.failed += count
            failed[(klass, errcode)] = failed.get((klass, errcode), 0) + count
            if klass in RETRYABLE_CLASSES:
                result.retryable += count
        elif state == "skipped":
            result.skipped += count
            key = reason if reason in SKIP_LABELS else "other"
            skipped[key] = skipped.get(key, 0) + count
        elif state == "unknown":
            result.unknown += count
            key = reason if reason in UNKNOWN_LABELS else "unknown"
            unknown[key] = unknown.get(key, 0) + count
    result.failed_by = sorted(
        (Outcome("failed", k, e, n) for (k, e), n in failed.items()), key=lambda o: (-o.count, o.key)
    )
    result.skipped_by = sorted(
        (Outcome("skipped", k, None, n) for k, n in skipped.items()), key=lambda o: (-o.count, o.key)
    )
    result.unknown_by = sorted(
        (Outcome("unknown", k, None, n) for k, n in unknown.items()), key=lambda o: (-o.count, o.key)
    )
    if campaign.started_at is not None:
        elapsed = (now - campaign.started_at).total_seconds()
        result.window_seconds = max(1.0, min(RATE_WINDOW.total_seconds(), elapsed))
    _status(campaign, result, now)
    return result


def _status(campaign: Campaign, result: Figures, now: datetime) -> None:
    """What the ETA line says: an estimate, or what holds the campaign instead."""
    zone = ZoneInfo(current_app.config.get("TIMEZONE") or "Asia/Shanghai")
    state = campaign.state
    if state == CampaignState.scheduled:
        result.status = "held" if campaign.hold_code else "schedule"
        result.until = campaign.scheduled_at
    elif state == CampaignState.paused:
        result.status = "paused"
    elif state == CampaignState.running and result.pending:
        if campaign.has_quiet_hours and in_quiet_hours(
            campaign.quiet_start, campaign.quiet_end, campaign.timezone, now
        ):
            result.status = "quiet"
            local = now.astimezone(ZoneInfo(campaign.timezone))
            end = datetime.combine(local.date(), campaign.quiet_end, tzinfo=local.tzinfo)
            if end <= local:
                end += timedelta(days=1)
            result.until = end
            result.until_local = campaign.quiet_end.strftime("%H:%M")
            return
        paused_until = db.session.scalar(
            sa.select(DispatchState.paused_until).where(DispatchState.id == DISPATCH_STATE_ID)
        )
        if paused_until is not None and paused_until > now:
            result.status = "quota"
            result.until = paused_until
        elif result.rate > 0:
            result.status = "eta"
            result.eta_seconds = int(result.pending / result.rate + 0.5)
        else:
            result.status = "measuring"
    if result.until is not None and not result.until_local:
        result.until_local = result.until.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def duration_text(seconds: int) -> str:
    """A short, translated duration: ``about 3 min``, ``about 2 h 5 min``, ``under a minute``."""
    if seconds < 60:
        return _("under a minute")
    minutes = (seconds + 59) // 60
    if minutes < 60:
        return _("about %(m)s min", m=minutes)
    return _("about %(h)s h %(m)s min", h=minutes // 60, m=minutes % 60)


# -- the delivery log ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogFilter:
    """The delivery log's filters: state, error class, errcode, skip reason, part of an openid."""

    state: str = ""
    klass: str = ""
    errcode: int | None = None
    skip: str = ""
    openid: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LogFilter:
        state = args.get("state", "")
        klass = args.get("class", "")
        skip = args.get("skip", "")
        raw_code = (args.get("errcode") or "").strip()
        errcode = None
        if raw_code.lstrip("-").isdigit() and len(raw_code) <= 9:
            errcode = int(raw_code)
        return cls(
            state=state if state in DeliveryState.__members__ else "",
            klass=klass if klass in CLASS_LABELS else "",
            errcode=errcode,
            skip=skip if skip in SKIP_LABELS else "",
            openid=(args.get("openid") or "").strip()[:64],
        )

    def to_args(self) -> dict[str, str]:
        args = {"state": self.state, "class": self.klass, "skip": self.skip, "openid": self.openid}
        if self.errcode is not None:
            args["errcode"] = str(self.errcode)
        return {k: v for k, v in args.items() if v}

    def conditions(self, campaign_id: int) -> list[sa.ColumnElement[bool]]:
        d = Delivery.__table__.c
        where = [d.campaign_id == campaign_id]
        if self.state:
            where.append(d.state == self.state)
        if self.klass:
            where += [d.state == DeliveryState.failed.value, error_class() == self.klass]
        if self.errcode is not None:
            where.append(d.errcode == self.errcode)
        if self.skip:
            where += [d.state == DeliveryState.skipped.value, d.reason == self.skip]
        if self.openid:
            escaped = self.openid.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(d.openid.like(f"%{escaped}%", escape="\\"))
        return where


def log_query(campaign_id: int, criteria: LogFilter) -> sa.Select:
    return sa.select(Delivery).where(*criteria.conditions(campaign_id)).order_by(Delivery.id)


CSV_HEADER = (
    "delivery_id",
    "openid",
    "state",
    "reason",
    "error_class",
    "errcode",
    "errmsg",
    "msgid",
    "attempts",
    "created_at",
    "sent_at",
    "opened_at",
    "channel",
)


def csv_rows(campaign_id: int, criteria: LogFilter, batch: int = CSV_BATCH) -> Iterator[str]:
    """The filtered log as CSV text, streamed by ``csv_export.stream_csv`` (a BOM first, ``batch`` rows
    at a time by id, times in the operator's zone with their offset, no cell a spreadsheet would run)."""
    zone = csv_export.operator_zone()
    d = Delivery.__table__.c
    klass = sa.case((d.state == DeliveryState.failed.value, error_class()), else_="")
    columns = (
        d.id,
        d.openid,
        d.state,
        d.reason,
        klass.label("klass"),
        d.errcode,
        d.errmsg,
        d.msgid,
        d.attempts,
        d.created_at,
        d.sent_at,
        d.opened_at,
        sa.func.coalesce(d.channel_used, d.channel).label("via"),
    )

    def cells(rows: Any) -> Iterator[tuple]:
        for row in rows:
            yield (
                row.id,
                row.openid,
                str(getattr(row.state, "value", row.state)),
                row.reason,
                row.klass or "",
                row.errcode,
                row.errmsg,
                row.msgid or "",
                row.attempts,
                csv_export.local_time(row.created_at, zone),
                csv_export.local_time(row.sent_at, zone),
                csv_export.local_time(row.opened_at, zone),
                row.via or "",
            )

    statement = sa.select(*columns).where(*criteria.conditions(campaign_id))
    return csv_export.stream_csv(CSV_HEADER, statement, d.id, cells, batch=batch)
