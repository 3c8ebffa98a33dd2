"""The home page's figures, every one an SQL aggregate: no delivery, grant or user row is loaded.

"Today" and "per day" are the operator's days in config ``TIMEZONE``: the boundaries (local midnights)
are computed in that zone and compared in UTC, so a grant at 23:30 and one at 00:30 local time land on
different days whatever the zone's offset or daylight saving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import case, func, select

from ..campaigns import services as campaign_services
from ..catalog.services import CatalogFigures, catalog_figures
from ..extensions import db
from ..grants.services import PAIRED_SOURCES, LiveGrantFigures, live_grant_figures
from ..models import AuditEvent, Delivery, DeliveryState, DispatchState, Operator, Role, utcnow
from ..models.campaign import Campaign, CampaignState
from ..models.dispatch import DISPATCH_STATE_ID
from ..models.grants import ACCEPT_STATUSES, PROMPT_STATUSES, GrantEvent
from ..wechat.errors import ErrorCategory, category_for

CHART_DAYS = 14
# Unknown outcomes older than this are taken as looked at: the alert is about recent ones.
UNKNOWN_ALERT_DAYS = 7
# Delivery states that are still moving (counted as "pending" on the home page).
WAITING_STATES = (DeliveryState.pending, DeliveryState.sending, DeliveryState.retry_wait)


@dataclass(frozen=True)
class FailureGroup:
    """Failed deliveries of today with one errcode (``None``: no WeChat answer) and their error class."""

    category: str  # an ErrorCategory value, or "gave_up"
    errcode: int | None
    count: int


@dataclass(frozen=True)
class SendsToday:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    pending: int = 0
    skipped: int = 0
    failures: list[FailureGroup] = field(default_factory=list)

    @property
    def answered(self) -> int:
        """Sends that have an outcome (the campaigns' failure rate counts the same way)."""
        return self.sent + self.failed + self.unknown

    @property
    def success_rate(self) -> int | None:
        """``sent`` as a whole percentage of ``answered``; ``None`` before any answer."""
        return round(100 * self.sent / self.answered) if self.answered else None


@dataclass(frozen=True)
class GrantDay:
    day: date
    accepts: int = 0
    rejects: int = 0
    others: int = 0  # ban and filter: answers that are neither

    @property
    def answered(self) -> int:
        return self.accepts + self.rejects + self.others

    @property
    def accept_rate(self) -> int | None:
        return round(100 * self.accepts / self.answered) if self.answered else None


@dataclass(frozen=True)
class CampaignLine:
    campaign: Campaign
    counts: dict[str, int]

    @property
    def done(self) -> int:
        return self.counts["recipients"] - self.counts["pending"]

    @property
    def percent(self) -> int:
        recipients = self.counts["recipients"]
        return round(100 * self.done / recipients) if recipients else 0


@dataclass(frozen=True)
class CampaignFigures:
    running: list[CampaignLine]
    scheduled: list[Campaign]
    last_finished: CampaignLine | None


@dataclass(frozen=True)
class Alerts:
    drifted_templates: int = 0
    unknown_deliveries: int = 0
    paused_until: datetime | None = None

    @property
    def any(self) -> bool:
        return bool(self.drifted_templates or self.unknown_deliveries or self.paused_until)


@dataclass(frozen=True)
class HomeFigures:
    operators_by_role: dict[str, int]
    operators_disabled: int
    audit_events_today: int
    templates: CatalogFigures | None = None
    live_grants: LiveGrantFigures | None = None
    sends_today: SendsToday | None = None
    grant_days: list[GrantDay] = field(default_factory=list)
    campaigns: CampaignFigures | None = None
    alerts: Alerts = field(default_factory=Alerts)
    today: date | None = None
    zone: str = ""


def operator_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("TIMEZONE") or "Asia/Shanghai")


def day_starts(now: datetime, days: int, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants of the local midnights that start the last ``days`` days (today last), and the
    one that ends today: ``days + 1`` boundaries. Computed from calendar dates, so a 23- or 25-hour day
    (daylight saving) is still one day."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    return [
        datetime.combine(first + timedelta(days=n), datetime.min.time(), tzinfo=zone).astimezone(UTC)
        for n in range(days + 1)
    ]


def sends_today(start: datetime, end: datetime) -> SendsToday:
    """Deliveries created in ``[start, end)`` by their state now, and the failed ones by errcode."""
    t = Delivery.__table__.c
    in_day = (t.created_at >= start, t.created_at < end)
    by_state: dict[str, int] = {}
    for state, count in db.session.execute(
        select(t.state, func.count()).where(*in_day).group_by(t.state)
    ).all():
        by_state[str(getattr(state, "value", state))] = count
    groups: dict[tuple[str, int | None], int] = {}
    for errcode, reason, count in db.session.execute(
        select(t.errcode, t.reason, func.count())
        .where(*in_day, t.state == DeliveryState.failed.value)
        .group_by(t.errcode, t.reason)
    ).all():
        key = (failure_category(errcode, reason), errcode)
        groups[key] = groups.get(key, 0) + count
    failures = [FailureGroup(cat, code, n) for (cat, code), n in groups.items()]
    failures.sort(key=lambda group: (-group.count, group.category, group.errcode or 0))
    return SendsToday(
        sent=by_state.get("sent", 0),
        failed=by_state.get("failed", 0),
        unknown=by_state.get("unknown", 0),
        skipped=by_state.get("skipped", 0),
        pending=sum(by_state.get(state.value, 0) for state in WAITING_STATES),
        failures=failures,
    )


def failure_category(errcode: int | None, reason: str) -> str:
    """The error class of a failed delivery: from WeChat's errcode, or from our reason when WeChat never
    answered (the dispatch engine writes the class, or ``gave_up`` after the last retry)."""
    if errcode is not None:
        return category_for(errcode).value
    if reason == "gave_up":
        return reason
    if reason in {category.value for category in ErrorCategory}:
        return reason
    return ErrorCategory.OTHER.value


def grant_days(starts: list[datetime]) -> list[GrantDay]:
    """Prompt answers per local day (a prompt reported by both the client and the popup event counts
    once, as on the funnel): accepts, rejects, and the other answers (ban, filter)."""
    t = GrantEvent.__table__.c
    # The latest boundary first: the first one the instant is not before names its day.
    bucket = case(
        *[(t.occurred_at >= starts[n], n) for n in range(len(starts) - 2, -1, -1)],
        else_=-1,
    ).label("bucket")
    kind = case(
        (t.status.in_(ACCEPT_STATUSES), "accept"), (t.status == "reject", "reject"), else_="other"
    ).label("kind")
    rows = db.session.execute(
        select(bucket, kind, func.count())
        .where(
            t.occurred_at >= starts[0],
            t.occurred_at < starts[-1],
            t.source.in_(PAIRED_SOURCES),
            t.pairs_with_id.is_(None),
            t.status.in_(PROMPT_STATUSES),
        )
        .group_by(bucket, kind)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for n, answer, count in rows:
        counts.setdefault(int(n), {})[answer] = count
    zone = operator_zone()
    return [
        GrantDay(
            day=starts[n].astimezone(zone).date(),
            accepts=counts.get(n, {}).get("accept", 0),
            rejects=counts.get(n, {}).get("reject", 0),
            others=counts.get(n, {}).get("other", 0),
        )
        for n in range(len(starts) - 1)
    ]


def campaign_figures(limit: int = 5) -> CampaignFigures:
    """Running (and paused) campaigns with their progress, the next scheduled ones, and the last one
    that completed; each campaign's figures come from ``campaigns.services.counts``."""
    moving = db.session.scalars(
        select(Campaign)
        .where(Campaign.state.in_((CampaignState.running, CampaignState.paused)), Campaign.schedule.is_(None))
        .order_by(Campaign.started_at.desc(), Campaign.id.desc())
        .limit(limit)
    ).all()
    scheduled = db.session.scalars(
        select(Campaign)
        .where(Campaign.state == CampaignState.scheduled)
        # A recurring campaign is scheduled for its next occurrence.
        .order_by(func.coalesce(Campaign.scheduled_at, Campaign.next_occurrence_at), Campaign.id)
        .limit(3)
    ).all()
    last = db.session.scalars(
        select(Campaign)
        .where(Campaign.state == CampaignState.completed)
        .order_by(Campaign.finished_at.desc(), Campaign.id.desc())
        .limit(1)
    ).first()
    return CampaignFigures(
        running=[CampaignLine(c, campaign_services.counts(c)) for c in moving],
        scheduled=list(scheduled),
        last_finished=CampaignLine(last, campaign_services.counts(last)) if last is not None else None,
    )


def alerts(now: datetime, drifted_templates: int) -> Alerts:
    t = Delivery.__table__.c
    unknown = db.session.scalar(
        select(func.count()).where(
            t.state == DeliveryState.unknown.value,
            t.created_at >= now - timedelta(days=UNKNOWN_ALERT_DAYS),
        )
    )
    paused_until = db.session.scalar(
        select(DispatchState.paused_until).where(DispatchState.id == DISPATCH_STATE_ID)
    )
    return Alerts(
        drifted_templates=drifted_templates,
        unknown_deliveries=unknown or 0,
        paused_until=paused_until if paused_until is not None and paused_until > now else None,
    )


def home_figures(now: datetime | None = None) -> HomeFigures:
    now = now or utcnow()
    rows = db.session.execute(
        select(Operator.role, func.count()).where(Operator.is_disabled.is_(False)).group_by(Operator.role)
    ).all()
    by_role = {role.value: 0 for role in Role}
    by_role.update({role.value: count for role, count in rows})
    disabled = db.session.scalar(
        select(func.count()).select_from(Operator).where(Operator.is_disabled.is_(True))
    )
    since = now - timedelta(hours=24)
    events = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.at >= since))
    zone = operator_zone()
    starts = day_starts(now, CHART_DAYS, zone)
    templates = catalog_figures()
    return HomeFigures(
        operators_by_role=by_role,
        operators_disabled=disabled or 0,
        audit_events_today=events or 0,
        templates=templates,
        live_grants=live_grant_figures(top=5),
        sends_today=sends_today(starts[-2], starts[-1]),
        grant_days=grant_days(starts),
        campaigns=campaign_figures(),
        alerts=alerts(now, templates.drift),
        today=now.astimezone(zone).date(),
        zone=zone.key,
    )
