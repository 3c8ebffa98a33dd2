"""Recurring campaigns: a schedule read in the campaign's zone, its occurrences, and the scheduler pass
that turns each due occurrence into a run.

A recurring campaign (``Campaign.schedule`` set) never sends itself. Each occurrence is a **run**: a child
campaign row (``parent_id``, ``occurrence_at``) inserted in state ``scheduled`` and started by the
supervisor's ordinary path (``services.start``: the move to running and the snapshot of the segment in
one transaction), so a run has its own recipients, counters, progress and report. An occurrence that
cannot run any more is a child row in the terminal state ``missed``, with the reason in ``hold_code``.

Once, whatever runs the tick:

- the scheduler *claims* the occurrences it is about to record by moving the parent's cursor
  (``next_occurrence_at``) with a conditional UPDATE (``WHERE next_occurrence_at = <what it read>``): a
  second scheduler waits for the first one's row lock (PostgreSQL) or write lock (SQLite), then finds the
  cursor moved and records nothing;
- the runs are inserted with INSERT … ON CONFLICT (parent_id, occurrence_at) DO NOTHING, so even two
  schedulers that got past the cursor (or a cursor moved back by a resume) write one row per occurrence;
- the move of a run to running is the state machine's conditional move: one start, one snapshot.

Late occurrences: when the scheduler finds several occurrences due (nothing ran for a while), only the
latest may run, and only if it is at most ``RECURRING_MAX_LATENESS_MINUTES`` old; the others are recorded
``missed`` (``superseded`` when a later one ran in their place, ``late`` otherwise). A run waiting for its
template or segment to become usable again is missed once it is that late too.

Date reminders build on the same pieces: a reminder step is a schedule (its local send time, daily) whose
runs take their recipients from a date attribute instead of a segment; ``_run_row`` and the supervisor's
start path stay as they are, only the snapshot's recipient query differs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from cronsim import CronSim, CronSimError
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models.campaign import Campaign, CampaignState

log = logging.getLogger(__name__)
S = CampaignState

REPEATS = ("daily", "weekly", "monthly", "cron")
CRON_MAX = 120
# A campaign goes to a whole segment: its occurrences are at least this far apart.
MIN_INTERVAL = timedelta(hours=1)
# Occurrences judged for the interval check, and recorded per parent in one pass (a long outage of an
# hourly campaign is recorded over a few passes, each a short transaction).
INTERVAL_SAMPLE = 48
MAX_CATCH_UP = 500
DEFAULT_LATENESS_MINUTES = 60
HOLD_LATE, HOLD_SUPERSEDED = "late", "superseded"


class BadSchedule(Exception):
    """The schedule cannot be used: ``field`` names the part (``schedule.cron``), ``message`` says why."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


# -- the schedule ----------------------------------------------------------------------------------------


def _clock(value: Any) -> tuple[int, int]:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise BadSchedule("schedule.time", "schedule.time must be a local time HH:MM.")
    hours, minutes = value[:2], value[3:]
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise BadSchedule("schedule.time", "schedule.time must be a local time HH:MM.")
    return int(hours), int(minutes)


def _whole(value: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def parse_schedule(value: Any) -> dict[str, Any]:
    """The schedule's shape, normalised (what the OpenAPI document describes); the cron expression itself
    is judged by :func:`check`. :raise BadSchedule: naming the part that is wrong."""
    if not isinstance(value, Mapping):
        raise BadSchedule("schedule", "schedule must be an object with repeat.")
    repeat = value.get("repeat")
    if repeat not in REPEATS:
        raise BadSchedule("schedule.repeat", f"schedule.repeat must be one of {', '.join(REPEATS)}.")
    allowed = {
        "daily": {"repeat", "time"},
        "weekly": {"repeat", "time", "weekdays"},
        "monthly": {"repeat", "time", "day"},
        "cron": {"repeat", "cron"},
    }[repeat]
    extra = sorted(set(value) - allowed)
    if extra:
        raise BadSchedule(f"schedule.{extra[0]}", f"A {repeat} schedule has no {extra[0]}.")
    if repeat == "cron":
        cron = value.get("cron")
        if not isinstance(cron, str) or not cron.strip() or len(cron) > CRON_MAX:
            raise BadSchedule(
                "schedule.cron", f"schedule.cron must be a cron expression of at most {CRON_MAX} characters."
            )
        return {"repeat": "cron", "cron": " ".join(cron.split())}
    hours, minutes = _clock(value.get("time"))
    schedule: dict[str, Any] = {"repeat": repeat, "time": f"{hours:02d}:{minutes:02d}"}
    if repeat == "weekly":
        days = value.get("weekdays")
        numbers = [_whole(day) for day in days] if isinstance(days, list) else []
        if (
            not numbers
            or any(day is None or not 1 <= day <= 7 for day in numbers)
            or len(set(numbers)) != len(numbers)
        ):
            raise BadSchedule(
                "schedule.weekdays",
                "schedule.weekdays must list different days, 1 (Monday) to 7 (Sunday).",
            )
        schedule["weekdays"] = sorted(numbers)
    if repeat == "monthly":
        day = _whole(value.get("day"))
        if day is None or not 1 <= day <= 31:
            raise BadSchedule("schedule.day", "schedule.day must be a day of the month, 1 to 31.")
        schedule["day"] = day
    return schedule


def cron_expression(schedule: Mapping[str, Any]) -> str:
    """Every kind of schedule as the five cron fields it means (one evaluator, one DST behaviour)."""
    if schedule["repeat"] == "cron":
        return schedule["cron"]
    hours, minutes = (int(part) for part in schedule["time"].split(":"))
    if schedule["repeat"] == "weekly":
        days = ",".join(str(day % 7) for day in schedule["weekdays"])  # ISO 7 (Sunday) is cron's 0
        return f"{minutes} {hours} * * {days}"
    if schedule["repeat"] == "monthly":
        return f"{minutes} {hours} {schedule['day']} * *"
    return f"{minutes} {hours} * * *"


def occurrences(schedule: Mapping[str, Any], zone: str, after: datetime) -> Iterator[datetime]:
    """The occurrences strictly after ``after``, as aware UTC instants.

    The schedule is read on the wall clock of ``zone`` (cronsim follows Debian's cron across a change of
    offset: a time the clock skips runs when the clock resumes, a time it passes twice runs once).
    """
    local = after.astimezone(ZoneInfo(zone))
    for moment in CronSim(cron_expression(schedule), local):
        yield moment.astimezone(UTC)


def next_occurrence(schedule: Mapping[str, Any], zone: str, at_or_after: datetime) -> datetime | None:
    """The first occurrence at or after ``at_or_after`` (None if there is none in the next 50 years)."""
    return next(occurrences(schedule, zone, at_or_after - timedelta(microseconds=1)), None)


def check(schedule: Mapping[str, Any], zone: str, now: datetime) -> None:
    """:raise BadSchedule: the cron expression is not one cron reads, never occurs, or occurs more than
    once an hour."""
    field = "schedule.cron" if schedule["repeat"] == "cron" else "schedule"
    try:
        upcoming = []
        for moment in occurrences(schedule, zone, now):
            upcoming.append(moment)
            if len(upcoming) == INTERVAL_SAMPLE:
                break
    except (CronSimError, ValueError) as bad:
        raise BadSchedule(field, f"schedule.cron is not a cron expression ({bad}).") from None
    if not upcoming:
        raise BadSchedule(field, "The schedule never occurs.", "never")
    if any(later - earlier < MIN_INTERVAL for earlier, later in zip(upcoming, upcoming[1:], strict=False)):
        raise BadSchedule(field, "A campaign may repeat at most once an hour.", "too_often")


def lateness() -> timedelta:
    return timedelta(
        minutes=current_app.config.get("RECURRING_MAX_LATENESS_MINUTES", DEFAULT_LATENESS_MINUTES)
    )


def too_late(occurrence_at: datetime, now: datetime) -> bool:
    return now - occurrence_at > lateness()


# -- the scheduler pass ----------------------------------------------------------------------------------


@dataclass
class Recorded:
    runs: int = 0
    missed: int = 0


def record_due_occurrences(now: datetime) -> Recorded:
    """Record every due occurrence of every scheduled recurring campaign: a run (state ``scheduled``,
    which the supervisor starts next) or ``missed``. Each campaign is its own transaction."""
    done = Recorded()
    due = db.session.execute(
        sa.select(Campaign.id, Campaign.next_occurrence_at).where(
            Campaign.state == S.scheduled,
            Campaign.schedule.is_not(None),
            Campaign.next_occurrence_at <= now,
        )
    ).all()
    for parent_id, cursor in due:
        try:
            runs, missed = _advance(parent_id, cursor, now)
            done.runs += runs
            done.missed += missed
        except Exception:
            db.session.rollback()
            log.exception("recurring campaign %s: its due occurrences could not be recorded", parent_id)
    return done


def _advance(parent_id: int, cursor: datetime, now: datetime) -> tuple[int, int]:
    parent = db.session.get(Campaign, parent_id, populate_existing=True)
    if parent is None or parent.schedule is None:
        return 0, 0
    due = [cursor]
    following: datetime | None = None
    for moment in occurrences(parent.schedule, parent.timezone, cursor):
        if moment > now or len(due) >= MAX_CATCH_UP:
            following = moment
            break
        due.append(moment)
    # The claim: whoever moves the cursor from what it read records these occurrences.
    claimed = db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == parent_id, Campaign.state == S.scheduled, Campaign.next_occurrence_at == cursor)
        .values(next_occurrence_at=following, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return 0, 0
    limit = current_app.config.get("RECURRING_MAX_LATENESS_MINUTES", DEFAULT_LATENESS_MINUTES)
    rows = []
    for index, moment in enumerate(due):
        last = index == len(due) - 1
        late = too_late(moment, now)
        if last and not late:
            rows.append(_run_row(parent, moment, now, S.scheduled))
        elif late:
            rows.append(_run_row(parent, moment, now, S.missed, HOLD_LATE, {"limit": limit}))
        else:
            rows.append(_run_row(parent, moment, now, S.missed, HOLD_SUPERSEDED, {}))
    inserted = insert_runs(rows)
    db.session.commit()
    runs = sum(1 for row in inserted if row == S.scheduled.value)
    return runs, len(inserted) - runs


def _run_row(
    parent: Campaign,
    occurrence_at: datetime,
    now: datetime,
    state: CampaignState,
    hold_code: str = "",
    hold_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A run of ``parent`` for one occurrence: the parent's message and settings, its own everything else."""
    return {
        "name": parent.name,
        "template_id": parent.template_id,
        "segment_id": parent.segment_id,
        "data": dict(parent.data or {}),
        "page": parent.page,
        "miniprogram_state": parent.miniprogram_state,
        "lang": parent.lang,
        "state": state.value,
        "hold_code": hold_code,
        "hold_args": hold_args or {},
        "scheduled_at": occurrence_at,
        "finished_at": now if state == S.missed else None,
        "quiet_start": parent.quiet_start,
        "quiet_end": parent.quiet_end,
        "timezone": parent.timezone,
        "rate_per_second": parent.rate_per_second,
        "rate_tokens": 0.0,
        "recipients": 0,
        "parent_id": parent.id,
        "occurrence_at": occurrence_at,
        "reminder": parent.reminder,  # a date reminder's run takes its recipients from the date
        "created_by_id": parent.created_by_id,
        "created_at": now,
        "updated_at": now,
    }


def insert_runs(rows: list[dict[str, Any]]) -> list[str]:
    """INSERT … ON CONFLICT (parent_id, occurrence_at) DO NOTHING; the states of the rows really written."""
    if not rows:
        return []
    dialect = db.session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(Campaign.__table__)
    written = []
    for row in rows:  # one by one: RETURNING says which rows this scheduler wrote
        statement = (
            insert.values(**row)
            .on_conflict_do_nothing(index_elements=["parent_id", "occurrence_at"])
            .returning(Campaign.__table__.c.state)
        )
        state = db.session.execute(statement).scalar()
        if state is not None:
            written.append(str(getattr(state, "value", state)))
    return written


def runs_query(parent_id: int) -> sa.Select:
    return sa.select(Campaign).where(Campaign.parent_id == parent_id).order_by(Campaign.occurrence_at.desc())


# -- words for the pages -------------------------------------------------------------------------------


def schedule_words(schedule: Mapping[str, Any] | None) -> str:
    """The schedule in the operator's language ("" for none)."""
    from flask_babel import get_locale
    from flask_babel import gettext as _

    from .forms import WEEKDAYS

    if not schedule:
        return ""
    repeat = schedule.get("repeat")
    if repeat == "cron":
        return _("By the cron expression %(cron)s", cron=schedule.get("cron", ""))
    clock = schedule.get("time", "")
    if repeat == "weekly":
        names = dict(WEEKDAYS)
        locale = get_locale()
        joiner = "、" if locale and locale.language == "zh" else ", "
        days = joiner.join(str(names.get(day, day)) for day in schedule.get("weekdays") or [])
        return _("Every %(days)s at %(time)s", days=days, time=clock)
    if repeat == "monthly":
        return _("On day %(day)s of every month at %(time)s", day=schedule.get("day"), time=clock)
    return _("Every day at %(time)s", time=clock)


def run_counts(run_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per run: its deliveries by outcome (pending counts every row not yet final), in one query."""
    from ..models import Delivery, DeliveryState

    counts: dict[int, dict[str, int]] = {
        run_id: {"sent": 0, "failed": 0, "skipped": 0, "unknown": 0, "pending": 0} for run_id in run_ids
    }
    if not run_ids:
        return counts
    d = Delivery.__table__.c
    rows = db.session.execute(
        sa.select(d.campaign_id, d.state, sa.func.count())
        .where(d.campaign_id.in_(run_ids))
        .group_by(d.campaign_id, d.state)
    ).all()
    final = {
        DeliveryState.sent.value,
        DeliveryState.failed.value,
        DeliveryState.skipped.value,
        DeliveryState.unknown.value,
    }
    for run_id, state, count in rows:
        state = str(getattr(state, "value", state))
        counts[run_id][state if state in final else "pending"] += count
    return counts
