"""Huey carries only kicks ("claim what is due"), scheduled wake-ups, the periodic tick and the daily
follower sync of the Official Account (``oa.daily_sync``).

Losing or repeating a kick is harmless: the delivery rows are the queue of record, and the tick
every minute finds anything a lost kick would have. SqliteHuey (a file beside the database) in the
embedded default, RedisHuey when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from huey import Huey, RedisHuey, SqliteHuey, crontab

from ..models import Delivery, DeliveryState, utcnow
from ..models.campaign import Campaign, CampaignState
from ..oa.daily_sync import start_follower_sync, sync_due

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30.0
MAX_WAKE_DELAY = timedelta(minutes=1)


@dataclass
class DispatchTasks:
    huey: Huey
    kick: Any
    tick: Any
    sync_followers: Any = None


def make_huey(app: Flask) -> Huey:
    if app.config.get("HUEY_IMMEDIATE"):
        huey = SqliteHuey("tongzhi", filename=str(Path(app.instance_path) / "huey-immediate.db"))
        huey.immediate = True
        return huey
    if app.config.get("REDIS_URL"):
        return RedisHuey("tongzhi", url=app.config["REDIS_URL"])
    path = Path(app.config.get("HUEY_SQLITE_PATH") or Path(app.instance_path) / "huey.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("tongzhi", filename=str(path))


def init_app(app: Flask) -> None:
    """Create the app's Huey and register its tasks; the worker (``flask worker``) consumes them."""
    huey = make_huey(app)

    @huey.task()
    def kick() -> int:
        with app.app_context():
            return _drain(app)

    @huey.periodic_task(crontab(minute="*"))
    def tick() -> int:
        with app.app_context():
            dispatcher = _dispatcher(app)
            lost = dispatcher.reconcile()
            if lost.unknown:
                log.warning(
                    "%d delivery(ies) lost their worker after starting and are now unknown", lost.unknown
                )
            if lost.requeued:
                log.warning(
                    "%d delivery(ies) lost their worker before starting and are pending again", lost.requeued
                )
            if joined := dispatcher.join_missed_reports():
                log.info("%d delivery report(s) that crossed their msgid's commit joined", joined)
            return _drain(app)

    def follower_sync_due(timestamp) -> bool:
        return sync_due(app.config.get("OA_FOLLOWER_SYNC_AT"), app.config.get("TIMEZONE", "UTC"), timestamp)

    @huey.periodic_task(follower_sync_due, name="sync_followers_daily")
    def sync_followers_daily():
        """Once a day (OA_FOLLOWER_SYNC_AT): the Official Account's followers, in a thread of their own."""
        return start_follower_sync(app)

    app.extensions["dispatch_tasks"] = DispatchTasks(huey, kick, tick, sync_followers_daily)


def _dispatcher(app: Flask):
    from .engine import Dispatcher
    from .ledger_adapter import grants_ledger

    dispatcher = app.extensions.get("dispatcher")
    if dispatcher is None:
        dispatcher = app.extensions["dispatcher"] = Dispatcher(
            app,
            grants_ledger(),
            batch_size=app.config.get("DISPATCH_BATCH_SIZE") or None,
            lease_seconds=app.config.get("DISPATCH_LEASE_SECONDS", 120),
            stop=app.extensions.get("dispatch_stop"),
        )
    return dispatcher


def _drain(app: Flask) -> int:
    _run_hooks(app)
    dispatcher = _dispatcher(app)
    sent = dispatcher.drain(DRAIN_SECONDS)
    _schedule_wake_up(app)
    return sent


def _run_hooks(app: Flask) -> None:
    """Work other packages do before each drain (campaigns: scheduled starts, automatic pauses, completion),
    registered in ``app.extensions["dispatch_hooks"]``; one failing does not stop the sending."""
    for hook in app.extensions.get("dispatch_hooks", ()):
        try:
            hook()
        except Exception:
            from ..extensions import db

            db.session.rollback()
            log.exception("a dispatch hook failed; sending goes on")


def _schedule_wake_up(app: Flask) -> None:
    """If rows wait for a retry time, a campaign for its scheduled start, or a recurring campaign for its
    next occurrence, kick again when the first is due (the minute tick is the backstop), so a campaign
    scheduled for 10:00 starts at 10:00, not 10:00:59."""
    from ..extensions import db

    t = Delivery.__table__.c
    with db.engine.connect() as connection:
        retry_due = connection.execute(
            sa.select(sa.func.min(t.not_before)).where(
                t.state.in_([DeliveryState.pending.value, DeliveryState.retry_wait.value])
            )
        ).scalar()
        start_due = connection.execute(
            sa.select(sa.func.min(Campaign.scheduled_at)).where(Campaign.state == CampaignState.scheduled)
        ).scalar()
        occurrence_due = connection.execute(
            sa.select(sa.func.min(Campaign.next_occurrence_at)).where(
                Campaign.state == CampaignState.scheduled
            )
        ).scalar()
    dues = [due for due in (retry_due, start_due, occurrence_due) if due is not None]
    if not dues:
        return
    due = min(dues)
    now = utcnow()
    delay = max(min(due - now, MAX_WAKE_DELAY), timedelta(0))
    app.extensions["dispatch_tasks"].kick.schedule(delay=delay.total_seconds())


def kick_dispatch() -> None:
    """Ask a worker to send what is due now (called after new deliveries are committed)."""
    try:
        current_app.extensions["dispatch_tasks"].kick()
    except Exception:  # the queue is a hint; the periodic tick finds the rows anyway
        log.exception("could not enqueue a dispatch kick; the next tick will pick the rows up")
