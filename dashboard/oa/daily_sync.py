"""The worker's daily follower sync (``OA_FOLLOWER_SYNC_AT``, in TIMEZONE), beside ``flask sync-followers``.

The follow and unfollow events keep the followers current; the daily sync catches what they missed (an
event lost while the push endpoint was down, followers from before the OA was linked). It is the same
``sync_followers`` the command runs, with three differences a scheduled job needs:

- **One at a time.** Several workers may run the periodic schedule (or yesterday's sync may still be
  going), so the sync runs only under a lock every process sees and a crash releases: a PostgreSQL
  session advisory lock, or on SQLite (one machine) an ``flock`` on a file beside the database. A worker
  that cannot take it skips the day's run (the holder is doing it).
- **Never in the way of sending.** It runs in a thread of its own, so the worker's queue (kicks, the
  minute tick) goes on while it pages through WeChat.
- **Caught up at start.** A worker that was down at the day's time would leave the followers a day
  older; a worker with the periodic tick starts a sync at once when no sync has seen a follower in the
  last ``CATCH_UP_AFTER`` (:func:`catch_up_if_stale`). A failed catch-up waits for the day's time.
- **A failure is logged, not raised.** The log line has WeChat's category, errcode and errmsg (secrets
  scrubbed, as in every WeChat error); what was written before the failure stays, and the next day's run
  starts again from the top.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, current_app

from ..config import oa_configured
from ..extensions import db
from ..models import utcnow
from ..models.oa import OaFollower
from ..wechat.errors import WeChatError
from ..wechat.oa import get_oa_client
from .followers import SyncResult, sync_followers

log = logging.getLogger(__name__)

# A day and an hour: yesterday's run at the day's time (and its length) does not count as missed.
CATCH_UP_AFTER = timedelta(hours=25)
LOCK_NAME = "tongzhi:oa-follower-sync"
# A stable 64-bit key for pg_try_advisory_lock, derived from the name (no other lock uses it).
ADVISORY_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)


def sync_due(at: str | None, zone: str, now: datetime) -> bool:
    """Whether the minute ``now`` (aware, or naive UTC as Huey's scheduler gives it) is ``at`` (``HH:MM``)
    in ``zone``."""
    if at is None:
        return False
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(ZoneInfo(zone)).strftime("%H:%M") == at


@contextlib.contextmanager
def exclusive() -> Iterator[bool]:
    """Yields True when this process holds the follower-sync lock (released on exit), else False."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            held = bool(connection.scalar(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_KEY))))
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.scalar(sa.select(sa.func.pg_advisory_unlock(ADVISORY_KEY)))
                    connection.commit()
        return
    with _lock_file().open("a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _lock_file() -> Path:
    database = db.engine.url.database
    if database and database != ":memory:":
        return Path(f"{database}.follower-sync.lock")
    return Path(current_app.instance_path) / "follower-sync.lock"


def run_follower_sync() -> SyncResult | None:
    """The day's sync, in the current app context: the result, or None when the channel is off, another
    process holds the lock, or the sync failed (logged)."""
    if not oa_configured(current_app.config):
        return None
    with exclusive() as held:
        if not held:
            log.info("follower sync: another worker is running it; skipped here")
            return None
        try:
            return sync_followers(get_oa_client())
        except WeChatError as error:
            db.session.rollback()
            code = "no errcode" if error.errcode is None else f"errcode {error.errcode}"
            log.warning(
                "daily follower sync failed (%s, %s: %s); it runs again tomorrow",
                error.category.value,
                code,
                error.errmsg,
            )
        except Exception:
            db.session.rollback()
            log.exception("daily follower sync failed; it runs again tomorrow")
    return None


def start_follower_sync(app: Flask) -> threading.Thread | None:
    """Run the day's sync in a thread of its own (the worker's queue goes on); the thread, or None when
    the channel is off."""
    if not oa_configured(app.config):
        return None

    def work() -> None:
        with app.app_context():
            run_follower_sync()

    thread = threading.Thread(target=work, name="oa-follower-sync", daemon=True)
    thread.start()
    return thread


def catch_up_if_stale(app: Flask) -> threading.Thread | None:
    """At a worker's start: the sync's thread when the daily sync is on and no sync has seen a follower
    within ``CATCH_UP_AFTER`` (never, or the worker missed the day's time), else None."""
    if not oa_configured(app.config) or app.config.get("OA_FOLLOWER_SYNC_AT") is None:
        return None
    with app.app_context():
        # The last sync that saw anyone; an account with no followers syncs at every start (one call).
        last = db.session.scalar(sa.select(sa.func.max(OaFollower.synced_at)))
        db.session.remove()
    if last is not None and utcnow() - last < CATCH_UP_AFTER:
        return None
    log.info("follower sync: none since %s; catching up now", last.isoformat() if last else "ever")
    return start_follower_sync(app)
