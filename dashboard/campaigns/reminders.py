"""Date reminders: "your membership expires in 3 days", from a date attribute the company's back end keeps.

A reminder is a recurring campaign (``Campaign.reminder`` set, its ``schedule`` daily at the reminder's
local ``time``) whose runs are made, claimed, judged late and started exactly as any recurring campaign's
(``campaigns.recurring``); only the snapshot differs. One run per day covers every step: the steps share
the send time, and a run is one row per (reminder, occurrence) (``UNIQUE (parent_id, occurrence_at)``), so
a run per step would collide. The run's snapshot, for its local day D and each step (``offset_days`` o):

1. ``INSERT … SELECT … ON CONFLICT DO NOTHING`` into ``reminder_sent`` of (reminder, step, user, date value)
   for the users whose date attribute's day (its first ten characters: the operator's calendar day) is
   D − o, within the campaign's segment when it has one. The UNIQUE key makes a step once per user and
   value of the date: a rerun of the day writes nothing, a moved date is a new value.
2. One delivery row per ``reminder_sent`` row this run wrote, then each step's values filled in (a value
   its rule refuses skips that user, ``invalid_value``).

All in the run's start transaction (``services.start``): the rows of (1) exist only if the deliveries do.

The forecast (``forecast``) counts, per day of the next 14 and per step, in SQL grouped by date value, the
users due (not yet sent that step for that value), those whose credits held now still leave one for
that send after the earlier steps still to come (``audience.segments.reach_reason`` and
``live_grant_condition``: the ledger's rule) and those who would need to grant again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..audience.segments import credit_budget, filter_clause, live_grant_condition, reach_reason
from ..dispatch.channels import NO_CHANNEL, NOT_FOLLOWING
from ..extensions import db
from ..models import Channel, Delivery, DeliverySource, DeliveryState, WechatUser
from ..models.campaign import Campaign
from ..models.grants import GrantBalance
from ..models.oa import OaFollower
from ..models.reminder import ReminderSent
from ..models.segment import Segment
from ..models.user_attribute import UserAttribute
from . import values

MAX_STEPS = 3
MAX_OFFSET_DAYS = 365
FORECAST_DAYS = 14
DATE_TYPES = ("date", "datetime")
FIELDS = {"attribute", "time", "steps"}
# ``oa_data``: the step's Official Account values (``Campaign.oa_data``'s form), for a reminder on a
# channel that uses the Official Account (``services.uses_oa``); the OA template is the reminder's.
STEP_FIELDS = {"offset_days", "data", "oa_data"}
# Reasons a forecast user cannot be sent to now (``audience.segments.UNREACHABLE_REASONS``): the first two
# are the user's own settings, the last two are fixed by a new grant.
GRANT_AGAIN = ("no_credit", "budget")


class BadReminder(Exception):
    """The reminder cannot be used: ``field`` names the part (``reminder.steps[1].offset_days``)."""

    def __init__(self, field: str, message: str, status: int = 422, code: str = "invalid_field") -> None:
        super().__init__(message)
        self.field, self.message, self.status, self.code = field, message, status, code


def _whole(value: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _clock(value: Any) -> str:
    if (
        isinstance(value, str)
        and len(value) == 5
        and value[2] == ":"
        and value[:2].isdigit()
        and value[3:].isdigit()
        and int(value[:2]) < 24
        and int(value[3:]) < 60
    ):
        return value
    raise BadReminder("reminder.time", "reminder.time must be a local time HH:MM.")


def date_attributes() -> list[UserAttribute]:
    """The declared attributes a reminder may follow (type date or datetime), by key."""
    return list(
        db.session.scalars(
            sa.select(UserAttribute).where(UserAttribute.type.in_(DATE_TYPES)).order_by(UserAttribute.key)
        )
    )


def parse_reminder(value: Any) -> dict[str, Any]:
    """The reminder's shape, normalised: ``{"attribute", "time", "steps": [{"offset_days", "data"}]}``,
    the steps in the order given. The attribute must be a declared date or date-time; each step's values
    are judged against the template by the caller (``check_steps``). :raise BadReminder: naming the part."""
    if not isinstance(value, Mapping):
        raise BadReminder("reminder", "reminder must be an object with attribute, time and steps.")
    extra = sorted(set(value) - FIELDS)
    if extra:
        raise BadReminder(f"reminder.{extra[0]}", f"A reminder has no {extra[0]}.")
    attribute = value.get("attribute")
    if not isinstance(attribute, str) or not attribute:
        raise BadReminder("reminder.attribute", "reminder.attribute must name a date attribute.")
    kind = db.session.scalar(sa.select(UserAttribute.type).where(UserAttribute.key == attribute))
    if kind not in DATE_TYPES:  # what is declared, like an unknown template or segment: 404
        raise BadReminder(
            "reminder.attribute",
            f"reminder.attribute: {attribute!r} is not a declared date or date-time attribute.",
            404,
            "unknown_attribute",
        )
    clock = _clock(value.get("time"))
    steps = value.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise BadReminder("reminder.steps", f"reminder.steps must list 1 to {MAX_STEPS} steps.")
    normalised = []
    seen: set[int] = set()
    for index, step in enumerate(steps):
        path = f"reminder.steps[{index}]"
        if not isinstance(step, Mapping):
            raise BadReminder(path, f"{path} must be an object with offset_days and data.")
        extra = sorted(set(step) - STEP_FIELDS)
        if extra:
            raise BadReminder(f"{path}.{extra[0]}", f"A reminder step has no {extra[0]}.")
        offset = _whole(step.get("offset_days"))
        if offset is None or not -MAX_OFFSET_DAYS <= offset <= MAX_OFFSET_DAYS:
            raise BadReminder(
                f"{path}.offset_days",
                f"{path}.offset_days must be a whole number of days from -{MAX_OFFSET_DAYS} to "
                f"{MAX_OFFSET_DAYS} (-7: seven days before the date).",
            )
        if offset in seen:
            raise BadReminder(f"{path}.offset_days", f"{path}.offset_days: two steps on the same day.")
        seen.add(offset)
        data = step.get("data", {})
        if not isinstance(data, Mapping):
            raise BadReminder(f"{path}.data", f"{path}.data must be an object of keywords.")
        entry: dict[str, Any] = {"offset_days": offset, "data": dict(data)}
        if step.get("oa_data") is not None:
            if not isinstance(step["oa_data"], Mapping):
                raise BadReminder(f"{path}.oa_data", f"{path}.oa_data must be an object of keys.")
            entry["oa_data"] = dict(step["oa_data"])
        normalised.append(entry)
    return {"attribute": attribute, "time": clock, "steps": normalised}


def check_steps(
    specs: list[Mapping[str, Any]], reminder: Mapping[str, Any]
) -> list[list[values.KeywordSource]]:
    """Each step's values read against the template's keywords. :raise BadReminder: naming the keyword."""
    found = []
    for index, step in enumerate(reminder["steps"]):
        try:
            found.append(values.parse_sources(specs, step.get("data") or {}))
        except values.BadValue as bad:
            raise BadReminder(f"reminder.steps[{index}].data.{bad.key}", bad.message) from None
    return found


def check_oa_steps(
    keywords: list[Mapping[str, Any]], reminder: Mapping[str, Any]
) -> list[list[values.KeywordSource]]:
    """Each step's ``oa_data`` read against the Official Account template's keys, by the OA's rules.
    :raise BadReminder: naming the key (``reminder.steps[0].oa_data.first``)."""
    found = []
    for index, step in enumerate(reminder["steps"]):
        try:
            found.append(values.oa_sources(keywords, step.get("oa_data") or {}))
        except values.BadValue as bad:
            raise BadReminder(f"reminder.steps[{index}].oa_data.{bad.key}", bad.message) from None
    return found


def schedule_of(reminder: Mapping[str, Any]) -> dict[str, Any]:
    return {"repeat": "daily", "time": reminder["time"]}


# -- the snapshot ----------------------------------------------------------------------------------------


def _day_text(key: str) -> sa.ColumnElement[str]:
    """The attribute's first ten characters (YYYY-MM-DD: dates as given, date-times in TIMEZONE)."""
    return sa.func.substr(WechatUser.attributes[key].as_string(), 1, 10)


def local_day(run: Campaign) -> date:
    moment = run.occurrence_at or run.scheduled_at or run.started_at
    return moment.astimezone(ZoneInfo(run.timezone)).date()


def _in_segment(campaign: Campaign, now: datetime) -> list[sa.ColumnElement[bool]]:
    if campaign.segment_id is None:
        return []
    segment = db.session.get(Segment, campaign.segment_id)
    if segment is None:  # the launch and the supervisor refuse this before the snapshot
        return [sa.false()]
    return [filter_clause(segment.filter, now)]


def _insert(table: sa.Table):
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def snapshot(run: Campaign, now: datetime) -> int:
    """The run's recipients as delivery rows (see the module's text); the number of rows. Runs inside
    ``services.start``'s transaction."""
    from ..deliveries.opens import sql_open_token, tracked_page_prefix
    from .services import (
        _template,
        channel_columns,
        check_oa_sources,
        check_sources,
        oa_template_of,
        uses_mp,
        uses_oa,
    )

    reminder = run.reminder or {}
    steps = reminder.get("steps") or []
    template = _template(run.template_id) if uses_mp(run.channel) else None
    sources = [
        check_sources(template, step.get("data") or {}) if template is not None else [] for step in steps
    ]
    oa_template = oa_template_of(run.oa_template_id) if uses_oa(run.channel) else None
    oa_sources = [
        check_oa_sources(oa_template, step.get("oa_data") or {}) if oa_template is not None else None
        for step in steps
    ]
    day = local_day(run)
    reminder_id = run.parent_id or run.id
    sent = ReminderSent.__table__
    user = WechatUser.__table__.c
    day_text = _day_text(reminder["attribute"])
    where_segment = _in_segment(run, now)
    for index, step in enumerate(steps):
        target = (day - timedelta(days=step["offset_days"])).isoformat()
        chosen = sa.select(
            sa.literal(reminder_id, sa.Integer),
            sa.literal(index, sa.Integer),
            user.id,
            sa.literal(target, sa.String),
            sa.literal(run.id, sa.Integer),
            sa.literal(now, sent.c.created_at.type),
        ).where(day_text == target, *where_segment)
        db.session.execute(
            _insert(sent)
            .from_select(["campaign_id", "step", "user_id", "date_value", "run_id", "created_at"], chosen)
            .on_conflict_do_nothing(index_elements=["campaign_id", "step", "user_id", "date_value"])
        )
    # One delivery row per user this run wrote above (a user's date matches one step a day at most).
    dialect = db.session.get_bind().dialect.name
    t = Delivery.__table__
    prefix = tracked_page_prefix(run.page)
    chosen_cols = [user.id.label("user_id"), user.openid.label("openid")]
    if prefix:
        chosen_cols.append(sql_open_token(dialect).label("token"))
    recipients_query = (
        sa.select(*chosen_cols)
        .select_from(sent.join(WechatUser.__table__, user.id == sent.c.user_id))
        .where(sent.c.run_id == run.id)
    )
    if prefix and dialect != "postgresql":
        recipients = recipients_query.cte("recipients").prefix_with("MATERIALIZED")  # see services._snapshot
    else:
        recipients = recipients_query.subquery("recipients")
    r = recipients.c
    columns = {
        "source": sa.literal(DeliverySource.campaign.value, sa.String),
        "campaign_id": sa.literal(run.id, sa.Integer),
        "user_id": r.user_id,
        "openid": r.openid,
        "template_id": sa.literal(run.template_id, sa.String),
        "data": sa.literal({}, t.c.data.type),
        "page": sa.literal(prefix, sa.String) + r.token if prefix else sa.literal(run.page, sa.String),
        "miniprogram_state": sa.literal(run.miniprogram_state, sa.String),
        "lang": sa.literal(run.lang, sa.String),
        **channel_columns(run, None),
        "state": sa.literal(DeliveryState.pending.value, sa.String),
        "attempts": sa.literal(0, sa.Integer),
        "reason": sa.literal("", sa.String),
        "errmsg": sa.literal("", sa.String),
        "created_at": sa.literal(now, t.c.created_at.type),
        "updated_at": sa.literal(now, t.c.updated_at.type),
    }
    if prefix:
        columns["open_token"] = r.token
    db.session.execute(sa.insert(t).from_select(list(columns), sa.select(*columns.values())))
    for index, (step_sources, step_oa) in enumerate(zip(sources, oa_sources, strict=True)):
        _fill_step(run.id, index, step_sources, step_oa)
    return int(
        db.session.scalar(sa.select(sa.func.count()).select_from(t).where(t.c.campaign_id == run.id)) or 0
    )


def _fill_step(
    run_id: int,
    step: int,
    sources: list[values.KeywordSource],
    oa_sources: list[values.KeywordSource] | None = None,
) -> None:
    """The step's values (and Official Account values) on its rows: one UPDATE when they are the same for
    everyone, else per window of ``services.SNAPSHOT_BATCH`` rows (``services.fill_windows``: a refused
    value skips the row)."""
    from .services import fill_windows

    t = Delivery.__table__
    sent = ReminderSent.__table__
    mine = [
        t.c.campaign_id == run_id,
        t.c.user_id.in_(sa.select(sent.c.user_id).where(sent.c.run_id == run_id, sent.c.step == step)),
    ]
    if values.constant(sources) and values.constant(oa_sources or []):
        oa_data = values.fill(oa_sources, {}) if oa_sources is not None else None
        db.session.execute(sa.update(t).where(*mine).values(data=values.fill(sources, {}), oa_data=oa_data))
        return
    fill_windows(mine, sources, oa_sources)


# -- the forecast --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastRow:
    day: date  # the local day the step's run sends
    step: int
    offset_days: int
    date_value: str  # the date the users due hold
    due: int
    live: int  # hold a credit a campaign may spend now
    grant_again: int  # no credit, or only the credits kept for transactional sends
    blocked: int  # their own settings refuse (main switch off, "always reject")


def forecast_days(campaign: Campaign, now: datetime, days: int = FORECAST_DAYS) -> list[date]:
    today = now.astimezone(ZoneInfo(campaign.timezone)).date()
    return [today + timedelta(days=n) for n in range(days)]


def _due(campaign: Campaign, step: int, day_text, targets: Sequence[str]) -> sa.ColumnElement[bool]:
    """The user's date is one of ``targets`` and the step was not sent yet for that value."""
    return sa.and_(day_text.in_(list(targets)), ~_sent(campaign, step, day_text))


def _sent(campaign: Campaign, step: int, day_text) -> sa.Exists:
    sent = ReminderSent.__table__
    return sa.exists(
        sa.select(sa.literal(1)).where(
            sent.c.campaign_id == campaign.id,
            sent.c.step == step,
            sent.c.user_id == WechatUser.id,
            sent.c.date_value == day_text,
        )
    )


def _sends_ahead(campaign: Campaign, steps: list[tuple[int, int]], day_text, today: date):
    """SQL: how many of ``steps`` ((index, offset_days)) are still to be sent to the user for their date:
    the step's send day (date + offset) is today or later, and it was not sent yet for that value."""
    return sum(
        (
            sa.case(
                (
                    sa.and_(
                        day_text >= (today - timedelta(days=offset)).isoformat(),
                        ~_sent(campaign, index, day_text),
                    ),
                    1,
                ),
                else_=0,
            )
            for index, offset in steps
        ),
        sa.literal(0),
    )


def _credits_for(campaign: Campaign, spent, most: int) -> sa.ColumnElement[bool]:
    """On the joined ``GrantBalance``: a credit is left after ``spent`` sends (0 to ``most``), by the
    ledger's rule (``live_grant_condition``, the credits a campaign keeps for transactional sends on top)."""
    keep = max(credit_budget(campaign.template_id), 0)
    return sa.or_(
        *(
            sa.and_(spent == n, live_grant_condition(campaign.template_id, keep + 1 + n))
            for n in range(most + 1)
        )
    )


def _with_reason(campaign: Campaign):
    reason = reach_reason(campaign.template_id, max(credit_budget(campaign.template_id), 0))
    joined = sa.outerjoin(
        WechatUser,
        GrantBalance,
        sa.and_(GrantBalance.user_id == WechatUser.id, GrantBalance.template_id == campaign.template_id),
    )
    return reason, joined


def _follows() -> sa.Exists:
    """SQL: the user follows the Official Account now (the unionid join the claim makes,
    ``oa.followers.following_openids``)."""
    return sa.exists().where(
        OaFollower.unionid == WechatUser.unionid,
        WechatUser.unionid.is_not(None),
        OaFollower.following.is_(True),
    )


def _status(channel: str, reason, enough) -> sa.Case:
    """A due user's forecast on the reminder's channel, as the claim will choose it
    (``dispatch.channels.choose``): ``live`` (it will send), ``again`` (they must grant again, or
    follow), ``blocked`` (their own settings refuse the subscribe message)."""
    credit = sa.and_(reason.is_(None), enough)
    if channel == Channel.oa_template.value:
        return sa.case((_follows(), "live"), else_="again")
    if channel == Channel.mp_subscribe_or_oa.value:
        return sa.case(
            (credit, "live"),
            (_follows(), "live"),
            (sa.or_(reason.is_(None), reason.in_(GRANT_AGAIN)), "again"),
            else_="blocked",
        )
    return sa.case(
        (credit, "live"),
        (sa.or_(reason.is_(None), reason.in_(GRANT_AGAIN)), "again"),
        else_="blocked",
    )


def _why(channel: str, reason, enough):
    """Why a due user cannot be sent to on the reminder's channel (NULL: they can), for the export."""
    lacking = sa.case((reason.is_not(None), reason), (sa.not_(enough), TOO_FEW_CREDITS), else_=None)
    if channel == Channel.oa_template.value:
        return sa.case((_follows(), sa.null()), else_=sa.literal(NOT_FOLLOWING))
    if channel == Channel.mp_subscribe_or_oa.value:
        return sa.case((lacking.is_(None), sa.null()), (_follows(), sa.null()), else_=sa.literal(NO_CHANNEL))
    return lacking


def forecast(campaign: Campaign, now: datetime, days: int = FORECAST_DAYS) -> list[ForecastRow]:
    """Per day of the next ``days`` (from today, the campaign's zone) and per step, in day order: the
    users due, with a live credit now, who need to grant again, and those whose settings refuse. One
    statement per step, grouped by date value; no user is loaded."""
    reminder = campaign.reminder or {}
    day_text = _day_text(reminder.get("attribute", ""))
    reason, joined = _with_reason(campaign)
    segment = _in_segment(campaign, now)
    found: list[ForecastRow] = []
    horizon = forecast_days(campaign, now, days)
    steps = [(index, step["offset_days"]) for index, step in enumerate(reminder.get("steps") or [])]
    for index, offset in steps:
        targets = {(d - timedelta(days=offset)).isoformat(): d for d in horizon}
        # A one-time credit is spent by each earlier step still to come: the user needs one more for each.
        earlier = [(j, o) for j, o in steps if o < offset]
        enough = _credits_for(campaign, _sends_ahead(campaign, earlier, day_text, horizon[0]), len(earlier))
        status = _status(campaign.channel, reason, enough)
        per_user = (
            sa.select(day_text.label("value"), status.label("status"))
            .select_from(joined)
            .where(_due(campaign, index, day_text, list(targets)), *segment)
            .subquery()
        )
        rows = db.session.execute(
            sa.select(
                per_user.c.value,
                sa.func.count(),
                sa.func.count().filter(per_user.c.status == "live"),
                sa.func.count().filter(per_user.c.status == "again"),
            ).group_by(per_user.c.value)
        ).all()
        counted = {value: (due, live, again) for value, due, live, again in rows}
        for value, day in targets.items():
            due, live, again = counted.get(value, (0, 0, 0))
            found.append(ForecastRow(day, index, offset, value, due, live, again, due - live - again))
    found.sort(key=lambda row: (row.day, row.step))
    return found


EXPORT_HEADER = ("openid", "unionid", "nickname", "date", "reason")
# In the export: the user holds credits now, but fewer than the steps due before the horizon will spend.
TOO_FEW_CREDITS = "too_few_credits"


def export_statement(campaign: Campaign, now: datetime, days: int = FORECAST_DAYS) -> tuple[sa.Select, Any]:
    """The users due a step in the next ``days`` who cannot be sent to now, once each (keyed by user id),
    with why: for the product team to prompt them to grant again. For ``csv_export.stream_csv``."""
    reminder = campaign.reminder or {}
    day_text = _day_text(reminder.get("attribute", ""))
    reason, joined = _with_reason(campaign)
    horizon = forecast_days(campaign, now, days)
    steps = [(index, step["offset_days"]) for index, step in enumerate(reminder.get("steps") or [])]
    due = [
        _due(campaign, index, day_text, [(d - timedelta(days=offset)).isoformat() for d in horizon])
        for index, offset in steps
    ]
    # The sends due within the horizon each spend a credit: all of them but the last must leave one.
    spend = sum((sa.case((condition, 1), else_=0) for condition in due), sa.literal(0))
    enough = _credits_for(campaign, spend - 1, max(len(steps) - 1, 0))
    why = _why(campaign.channel, reason, enough)
    statement = (
        sa.select(
            WechatUser.id,
            WechatUser.openid,
            WechatUser.unionid,
            WechatUser.nickname,
            day_text.label("date_value"),
            why.label("reason"),
        )
        .select_from(joined)
        .where(sa.or_(sa.false(), *due), why.is_not(None), *_in_segment(campaign, now))
    )
    return statement, WechatUser.id


def export_cells(rows: Iterable[sa.Row]) -> Iterable[list[Any]]:
    for row in rows:
        yield [row.openid, row.unionid or "", row.nickname or "", row.date_value, row.reason]
