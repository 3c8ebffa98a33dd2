"""The worker's daily follower sync: a periodic task at OA_FOLLOWER_SYNC_AT (TIMEZONE), run in a thread of
its own, one process at a time, a failure logged without secrets and the next run syncing again. Both
databases; real HTTP to the sandbox's Official Account."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from dashboard.config import ConfigError, load_settings
from dashboard.oa.daily_sync import exclusive, run_follower_sync, start_follower_sync
from tests.oa.helpers import followers_in_db, oa_get, sandbox_followers

WRONG_SECRET = "not-the-oa-secret-5f0c2a"


def periodic_names(app) -> set[str]:
    huey = app.extensions["dispatch_tasks"].huey
    return {task.name for task in huey._registry.periodic_tasks}


def due_at(app, utc_naive: datetime) -> bool:
    """What Huey's scheduler asks each minute (it passes naive UTC)."""
    huey = app.extensions["dispatch_tasks"].huey
    return any(task.name.endswith("sync_followers_daily") for task in huey.read_periodic(utc_naive))


def assert_synced(app, sandbox) -> None:
    rows = followers_in_db(app)
    expected = {f["openid"]: f["unionid"] for f in sandbox_followers(sandbox, subscribed=True)}
    assert expected and {openid: row.unionid for openid, row in rows.items() if row.following} == expected


def test_the_daily_sync_is_registered_at_the_configured_time(app):
    assert any(name.endswith("sync_followers_daily") for name in periodic_names(app))
    assert app.config["OA_FOLLOWER_SYNC_AT"] == "03:30" and app.config["TIMEZONE"] == "Asia/Shanghai"
    assert due_at(app, datetime(2026, 12, 1, 19, 30))  # 03:30 on 2 December in Shanghai
    assert not due_at(app, datetime(2026, 12, 1, 19, 31))
    assert not due_at(app, datetime(2026, 12, 2, 3, 30))  # 03:30 UTC is 11:30 in Shanghai
    app.config["OA_FOLLOWER_SYNC_AT"] = "07:05"
    assert due_at(app, datetime(2026, 12, 1, 23, 5)) and not due_at(app, datetime(2026, 12, 1, 19, 30))
    app.config["OA_FOLLOWER_SYNC_AT"] = None  # off
    assert not any(due_at(app, datetime(2026, 12, 1, 19, minute)) for minute in range(60))


@pytest.mark.parametrize("raw,parsed", [("", "03:30"), ("3:05", "03:05"), ("23:59", "23:59"), ("off", None)])
def test_the_setting_reads_a_time_of_day_or_off(tmp_path, raw, parsed):
    settings = load_settings({"TONGZHI_ENV": "embedded", "OA_FOLLOWER_SYNC_AT": raw}, tmp_path)
    assert settings["OA_FOLLOWER_SYNC_AT"] == parsed


@pytest.mark.parametrize("raw", ["24:00", "3:5", "noon", "03:30:00"])
def test_a_malformed_time_is_refused_at_startup(tmp_path, raw):
    with pytest.raises(ConfigError, match="OA_FOLLOWER_SYNC_AT"):
        load_settings({"TONGZHI_ENV": "embedded", "OA_FOLLOWER_SYNC_AT": raw}, tmp_path)


def test_running_the_task_syncs_followers_from_the_sandbox(app, sandbox):
    assert followers_in_db(app) == {}
    thread = app.extensions["dispatch_tasks"].sync_followers.call_local()
    assert thread is not None and thread.name == "oa-follower-sync"
    thread.join(30)
    assert not thread.is_alive()
    assert_synced(app, sandbox)


def test_two_workers_never_sync_at_once(app, sandbox, caplog):
    caplog.set_level(logging.INFO, logger="dashboard.oa.daily_sync")
    with app.app_context():
        with exclusive() as held:  # another worker's sync, as far as this one can tell
            assert held
            assert run_follower_sync() is None
        assert "another worker is running it" in caplog.text
        assert followers_in_db(app) == {}
        assert oa_get(sandbox, "/state")["api_calls"].get("/cgi-bin/user/get", 0) == 0
        result = run_follower_sync()  # the lock is free again
    assert result is not None and result.added == result.total > 0
    assert_synced(app, sandbox)


def test_a_failure_is_logged_without_secrets_and_the_next_run_syncs(app, sandbox, caplog):
    caplog.set_level(logging.INFO)
    secret = app.config["WECHAT_OA_SECRET"]
    app.config["WECHAT_OA_SECRET"] = WRONG_SECRET
    with app.app_context():
        assert run_follower_sync() is None
    failure = [r for r in caplog.records if "daily follower sync failed" in r.getMessage()]
    assert failure and failure[0].levelno == logging.WARNING
    assert "runs again tomorrow" in failure[0].getMessage()
    assert WRONG_SECRET not in caplog.text and secret not in caplog.text
    assert followers_in_db(app) == {}
    # the next day's run, with the secret put right
    app.config["WECHAT_OA_SECRET"] = secret
    app.extensions.pop("wechat_oa", None)
    with app.app_context():
        assert run_follower_sync() is not None
    assert_synced(app, sandbox)


def test_with_the_official_account_off_nothing_runs(app, sandbox):
    app.config.update(WECHAT_OA_APPID=None, WECHAT_OA_SECRET=None)
    assert start_follower_sync(app) is None
    with app.app_context():
        assert run_follower_sync() is None
    assert oa_get(sandbox, "/state")["api_calls"].get("/cgi-bin/user/get", 0) == 0


def test_the_command_waits_for_no_one_and_says_a_sync_is_running(app, runner, sandbox):
    with app.app_context(), exclusive() as held:
        assert held
        busy = runner.invoke(args=["sync-followers"])
    assert busy.exit_code != 0 and "already running" in busy.output
    assert followers_in_db(app) == {}
    done = runner.invoke(args=["sync-followers"])
    assert done.exit_code == 0, done.output
    assert_synced(app, sandbox)


def test_a_worker_starting_after_a_missed_day_catches_up_once(app, sandbox):
    """A worker that was down at the day's time syncs when it starts; one started after a recent sync
    does not; with the daily sync off, a start never syncs."""
    import sqlalchemy as sa

    from dashboard.extensions import db
    from dashboard.models import utcnow
    from dashboard.models.oa import OaFollower
    from dashboard.oa.daily_sync import CATCH_UP_AFTER, catch_up_if_stale

    def start_worker():
        thread = catch_up_if_stale(app)
        if thread is not None:
            thread.join(30)
        return thread

    assert start_worker() is not None  # never synced
    assert_synced(app, sandbox)
    assert start_worker() is None  # synced a moment ago
    with app.app_context():
        db.session.execute(sa.update(OaFollower).values(synced_at=utcnow() - CATCH_UP_AFTER))
        db.session.commit()
    app.config["OA_FOLLOWER_SYNC_AT"] = None
    assert start_worker() is None  # the daily sync is off: no catching up either
    app.config["OA_FOLLOWER_SYNC_AT"] = "03:30"
    assert start_worker() is not None  # the day's run was missed
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.min(OaFollower.synced_at))) > utcnow() - CATCH_UP_AFTER / 2
