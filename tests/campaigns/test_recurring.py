"""Recurring campaigns: each occurrence one run (its own snapshot), once, whatever number of schedulers
tick at once; late occurrences run within the allowed lateness and are recorded missed beyond it; the
schedule is read on the wall clock of TIMEZONE, across a change of offset. The clock is frozen: every
call takes ``now``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.campaigns import recurring, services
from dashboard.campaigns.states import InvalidTransition
from dashboard.dispatch.tasks import _schedule_wake_up
from dashboard.extensions import db
from dashboard.models import Delivery
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.types import utcnow
from tests.campaigns.helpers import (
    NEW_YORK,
    campaign,
    local,
    new_york_overrides,
    no_scheduler_failure,  # noqa: F401 (an autouse fixture)
    prepared_campaign,
    runs,
)

S = CampaignState
DAILY_9 = {"repeat": "daily", "time": "09:00"}


@pytest.fixture
def config_overrides(sandbox):
    return new_york_overrides(sandbox)


def deliveries_of(app, campaign_id: int) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
        )


def tick(app, now: datetime, schedulers: int = 1) -> None:
    """``schedulers`` workers run the supervisor's pass at the same instant (threads, own sessions)."""
    if schedulers == 1:
        with app.app_context():
            services.supervise(now)
        return
    barrier = threading.Barrier(schedulers)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=30)
                services.supervise(now)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(schedulers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def launched(app, sandbox, template, schedule, count: int, now: datetime) -> tuple[int, list[str]]:
    parent_id, openids = prepared_campaign(app, sandbox, template, count, schedule=schedule)
    with app.app_context():
        assert services.launch(parent_id, now=now).state == S.scheduled
    return parent_id, openids


# -- the schedule, alone -------------------------------------------------------------------------------


def upcoming(schedule: dict, after: datetime, n: int, zone: str = "America/New_York") -> list[datetime]:
    found = []
    for moment in recurring.occurrences(recurring.parse_schedule(schedule), zone, after):
        found.append(moment.astimezone(ZoneInfo(zone)))
        if len(found) == n:
            return found
    return found


def test_weekday_schedule_runs_on_the_given_weekdays_only():
    # 2026-12-07 is a Monday; 1 = Monday ... 7 = Sunday.
    found = upcoming({"repeat": "weekly", "time": "08:15", "weekdays": [7, 1, 5]}, local(2026, 12, 7, 9), 4)
    assert [(m.date().isoformat(), m.strftime("%H:%M")) for m in found] == [
        ("2026-12-11", "08:15"),  # Friday
        ("2026-12-13", "08:15"),  # Sunday
        ("2026-12-14", "08:15"),  # Monday
        ("2026-12-18", "08:15"),
    ]


def test_day_of_month_schedule_skips_months_without_that_day():
    found = upcoming({"repeat": "monthly", "time": "10:00", "day": 31}, local(2026, 10, 1), 3)
    assert [m.date().isoformat() for m in found] == ["2026-10-31", "2026-12-31", "2027-01-31"]


def test_cron_expression_is_read_on_the_operators_clock():
    found = upcoming({"repeat": "cron", "cron": "30 8 * * 1-5"}, local(2026, 12, 4, 9), 2)  # a Friday
    assert [m.isoformat() for m in found] == ["2026-12-07T08:30:00-05:00", "2026-12-08T08:30:00-05:00"]
    assert found[0].astimezone(UTC).hour == 13


@pytest.mark.parametrize(
    "cron,field",
    [("61 * * * *", "schedule.cron"), ("0 9 * *", "schedule.cron"), ("*/20 * * * *", "schedule.cron")],
)
def test_a_bad_or_too_frequent_cron_expression_is_refused_naming_the_field(cron, field):
    with pytest.raises(recurring.BadSchedule) as bad:
        recurring.check(recurring.parse_schedule({"repeat": "cron", "cron": cron}), "Asia/Shanghai", utcnow())
    assert bad.value.field == field


def test_a_daily_time_follows_the_wall_clock_across_the_march_change():
    """New York moves from UTC-5 to UTC-4 on 2026-03-08: 09:00 stays 09:00 on the wall clock, and a
    02:30 that the clock skips that night runs once, when the clock resumes (03:00)."""
    nine = upcoming(DAILY_9, local(2026, 3, 6, 12), 3)
    assert [m.astimezone(UTC).strftime("%d %H:%M") for m in nine] == ["07 14:00", "08 13:00", "09 13:00"]
    half_past_two = upcoming({"repeat": "daily", "time": "02:30"}, local(2026, 3, 7, 12), 2)
    assert [m.isoformat() for m in half_past_two] == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


# -- runs, through the supervisor ----------------------------------------------------------------------


def test_a_daily_campaign_runs_once_a_day_with_three_schedulers_at_once(app, sandbox, template):
    parent_id, openids = launched(app, sandbox, template, DAILY_9, 4, now=local(2026, 12, 1, 8))
    assert campaign(app, parent_id).next_occurrence_at == local(2026, 12, 1, 9)
    for day in (1, 2, 3):
        tick(app, local(2026, 12, day, 8, 59), schedulers=3)  # not yet
        assert len(runs(app, parent_id)) == day - 1
        tick(app, local(2026, 12, day, 9, 0, 5), schedulers=3)
        tick(app, local(2026, 12, day, 9, 1), schedulers=3)  # the next minute's tick finds it made
        made = runs(app, parent_id)
        assert len(made) == day
        today = made[-1]
        assert today.occurrence_at == local(2026, 12, day, 9) and today.state == S.running
        assert today.recipients == len(openids) and deliveries_of(app, today.id) == len(openids)
        assert campaign(app, parent_id).next_occurrence_at == local(2026, 12, day + 1, 9)
    assert campaign(app, parent_id).state == S.scheduled  # the recurring campaign itself never sends
    assert deliveries_of(app, parent_id) == 0


def test_a_missed_day_runs_once_within_the_lateness_and_is_recorded_missed_beyond(app, sandbox, template):
    parent_id, _ = launched(app, sandbox, template, DAILY_9, 2, now=local(2026, 12, 1, 8))
    tick(app, local(2026, 12, 1, 9, 0, 5))
    # Nothing runs on the 2nd until 09:45: the worker comes back within the hour, the run is made once.
    tick(app, local(2026, 12, 2, 9, 45), schedulers=3)
    tick(app, local(2026, 12, 2, 9, 46), schedulers=3)
    # Nothing runs from the 2nd 09:46 until the 4th 09:30: the 3rd is missed, the 4th runs.
    tick(app, local(2026, 12, 4, 9, 30), schedulers=3)
    made = runs(app, parent_id)
    assert [(r.occurrence_at.astimezone(NEW_YORK).day, r.state) for r in made] == [
        (1, S.running),
        (2, S.running),
        (3, S.missed),
        (4, S.running),
    ]
    missed = made[2]
    assert missed.hold_code == "late" and missed.hold_args == {"limit": 60}
    assert missed.recipients == 0 and deliveries_of(app, missed.id) == 0 and missed.finished_at is not None
    # Down from the 4th until the 6th 11:00 (two hours late): both are missed, nothing is sent late.
    tick(app, local(2026, 12, 6, 11, 0))
    assert [r.state for r in runs(app, parent_id)][4:] == [S.missed, S.missed]
    with app.app_context():
        with pytest.raises(InvalidTransition):
            services.resume(missed.id)


def test_of_several_overdue_occurrences_only_the_latest_runs(app, sandbox, template, config_overrides):
    app.config["RECURRING_MAX_LATENESS_MINUTES"] = 300
    every_two_hours = {"repeat": "cron", "cron": "0 */2 * * *"}
    parent_id, _ = launched(app, sandbox, template, every_two_hours, 2, now=local(2026, 12, 1, 9, 30))
    tick(app, local(2026, 12, 1, 14, 30))  # 10:00, 12:00 and 14:00 are due
    assert [
        (r.occurrence_at.astimezone(NEW_YORK).hour, r.state, r.hold_code) for r in runs(app, parent_id)
    ] == [
        (10, S.missed, "superseded"),
        (12, S.missed, "superseded"),
        (14, S.running, ""),
    ]


def test_a_run_held_past_the_lateness_is_missed(app, sandbox, template):
    parent_id, _ = launched(app, sandbox, template, DAILY_9, 2, now=local(2026, 12, 1, 8))
    with app.app_context():
        segment_id = campaign(app, parent_id).segment_id
        # The segment disappears: the run waits (held), then is missed once it is an hour late.
        db.session.execute(sa.update(Campaign).where(Campaign.id == parent_id).values(segment_id=None))
        db.session.commit()
    tick(app, local(2026, 12, 1, 9, 0, 5))
    held = runs(app, parent_id)[0]
    assert held.state == S.scheduled and held.hold_code == "segment"
    tick(app, local(2026, 12, 1, 10, 0, 10))
    assert runs(app, parent_id)[0].state == S.missed
    assert segment_id is not None


def test_pause_stops_the_runs_resume_goes_on_from_now_and_cancel_ends_them(app, sandbox, template):
    parent_id, _ = launched(app, sandbox, template, DAILY_9, 2, now=local(2026, 12, 1, 8))
    with app.app_context():
        services.pause(parent_id, now=local(2026, 12, 1, 8, 30))
    tick(app, local(2026, 12, 1, 9, 0, 5))
    tick(app, local(2026, 12, 2, 9, 0, 5))
    assert runs(app, parent_id) == []
    with app.app_context():
        resumed = services.resume(parent_id, now=local(2026, 12, 2, 12))
        assert resumed.state == S.scheduled and resumed.next_occurrence_at == local(2026, 12, 3, 9)
    tick(app, local(2026, 12, 3, 9, 0, 5))
    assert [r.occurrence_at for r in runs(app, parent_id)] == [local(2026, 12, 3, 9)]  # no missed rows
    with app.app_context():
        assert services.cancel(parent_id, now=local(2026, 12, 3, 10)).next_occurrence_at is None
        with pytest.raises(InvalidTransition) as refused:
            services.start(parent_id)
    assert "cancelled" in refused.value.message
    tick(app, local(2026, 12, 4, 9, 0, 5))
    made = runs(app, parent_id)
    assert len(made) == 1 and made[0].state == S.running  # the run under way goes on


def test_a_recurring_campaign_never_runs_itself(app, sandbox, template):
    parent_id, _ = launched(app, sandbox, template, DAILY_9, 2, now=local(2026, 12, 1, 8))
    with app.app_context():
        with pytest.raises(InvalidTransition) as refused:
            services.start(parent_id)
    assert "never sends itself" in refused.value.message


def test_runs_across_the_march_change_keep_nine_on_the_wall_clock(app, sandbox, template):
    parent_id, _ = launched(app, sandbox, template, DAILY_9, 2, now=local(2026, 3, 6, 12))
    for day in (7, 8, 9):
        tick(app, local(2026, 3, day, 9, 0, 5), schedulers=2)
    made = runs(app, parent_id)
    assert [r.occurrence_at.strftime("%m-%d %H:%M") for r in made] == [
        "03-07 14:00",
        "03-08 13:00",
        "03-09 13:00",
    ]
    assert all(r.state == S.running for r in made)


def test_the_worker_wakes_up_for_the_next_occurrence(app, sandbox, template):
    parent_id, _ = launched(app, sandbox, template, DAILY_9, 2, now=utcnow())
    with app.app_context():
        db.session.execute(
            sa.update(Campaign)
            .where(Campaign.id == parent_id)
            .values(next_occurrence_at=utcnow() + timedelta(seconds=20))
        )
        db.session.commit()
        huey = app.extensions["dispatch_tasks"].huey
        huey.flush()
        _schedule_wake_up(app)
        now = utcnow().replace(tzinfo=None)
        etas = sorted((task.eta - now).total_seconds() for task in huey.pending() if task.eta)
    assert len(etas) == 1 and 15 < etas[0] <= 20, etas


def test_the_unique_occurrence_holds_even_past_the_cursor(app, sandbox, template):
    """Two schedulers that both got past the cursor (or a cursor moved back) still write one row."""
    parent_id, _ = launched(app, sandbox, template, DAILY_9, 2, now=local(2026, 12, 1, 8))
    now = local(2026, 12, 1, 9, 0, 5)
    with app.app_context():
        parent = db.session.get(Campaign, parent_id)
        row = recurring._run_row(parent, local(2026, 12, 1, 9), now, S.scheduled)
        assert recurring.insert_runs([row]) == ["scheduled"]
        assert recurring.insert_runs([dict(row)]) == []
        db.session.commit()
    assert len(runs(app, parent_id)) == 1


def test_the_state_tables_of_a_recurring_campaign_and_of_a_run():
    from dashboard.campaigns import states

    def moves(of: str) -> set[tuple[CampaignState, CampaignState]]:
        return {(a, b) for a in S for b in S if states.allowed(a, b, of)}

    assert moves(states.RECURRING) == {
        (S.draft, S.scheduled),
        (S.draft, S.cancelled),
        (S.scheduled, S.paused),
        (S.scheduled, S.cancelled),
        (S.paused, S.scheduled),
        (S.paused, S.cancelled),
    }
    assert moves(states.RUN) == moves(states.ONE_OFF) | {(S.scheduled, S.missed)}
    assert not any(states.allowed(S.missed, target, of) for target in S for of in states.TABLES)
    assert states.RUN_CREATED_STATES == {S.scheduled, S.missed}


def _worker_tick(config: dict, now: str, ready, go) -> None:
    """One worker process: its own app, engine and session, ticking at the frozen ``now``."""
    from dashboard import create_app

    app = create_app(config)
    with app.app_context():
        db.session.execute(sa.select(1))  # connected before the start line
        ready.release()
        go.wait(60)
        services.supervise(datetime.fromisoformat(now))
        db.session.remove()
        db.engine.dispose()


def test_three_worker_processes_ticking_at_once_make_one_run(app, sandbox, template):
    import multiprocessing

    parent_id, openids = launched(app, sandbox, template, DAILY_9, 3, now=local(2026, 12, 1, 8))
    context = multiprocessing.get_context("spawn")
    ready, go = context.Semaphore(0), context.Event()
    config = {key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "TIMEZONE")}
    config |= {"TESTING": True, "AUTO_MIGRATE": False, "INSTANCE_PATH": app.instance_path}
    for day in (1, 2):
        now = local(2026, 12, day, 9, 0, 5).isoformat()
        workers = [context.Process(target=_worker_tick, args=(config, now, ready, go)) for _ in range(3)]
        for worker in workers:
            worker.start()
        for _ in workers:
            assert ready.acquire(timeout=60)
        go.set()
        for worker in workers:
            worker.join(60)
            assert worker.exitcode == 0
        go.clear()
        made = runs(app, parent_id)
        assert len(made) == day and made[-1].state == S.running
        assert made[-1].recipients == 3 and deliveries_of(app, made[-1].id) == len(openids)
