"""Several OS processes share one access token: WeChat is asked once per token lifetime, not once per process.

Each variant runs on a database file (SQLite), PostgreSQL (when TEST_DATABASE_URL is set) and Redis (when
REDIS_URL is set). Workers are real processes (``token_worker.py``) that build the app themselves, wait at
a file barrier, then hit the token service at the same moment.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboard.sandbox import tokens as sandbox_tokens
from tests.conftest import base_config

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("token_worker.py")
PYTHON = sys.executable  # .venv/bin/python when run through .venv/bin/pytest
FLASK = str(Path(sys.executable).with_name("flask"))
WORKERS = 8


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def store(request) -> str:
    return request.param


@pytest.fixture
def backend(store) -> str:
    """The conftest's database_url follows this: Redis runs keep their app tables in SQLite."""
    return "postgresql" if store == "postgresql" else "sqlite"


@pytest.fixture
def shared_redis(store, request, sandbox):
    """REDIS_URL for the Redis variant (keys are per-AppID, and the AppID is unique per test), else None."""
    if store != "redis":
        yield None
        return
    url = request.getfixturevalue("redis_url")
    yield url
    import redis

    connection = redis.Redis.from_url(url)
    try:
        keys = list(connection.scan_iter(f"tongzhi:wechat:*{sandbox.appid}"))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


def clean_env() -> dict[str, str]:
    """The parent's environment minus anything that would change which store or database a child uses."""
    drop = (
        "REDIS_URL",
        "DATABASE_URL",
        "TEST_DATABASE_URL",
        "WECHAT_APPID",
        "WECHAT_SECRET",
        "WECHAT_API_BASE",
    )
    return {k: v for k, v in os.environ.items() if k not in drop}


def run_workers(tmp_path, config, *, workers=WORKERS, calls=0, seconds=0.0, use_every=0) -> list[dict]:
    """Start ``workers`` processes, release them together, and return their reports."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = []
    for index in range(workers):
        spec = {
            "config": config,
            "barrier": str(barrier),
            "index": index,
            "calls": calls,
            "seconds": seconds,
            "use_every": use_every,
        }
        processes.append(
            subprocess.Popen(
                [PYTHON, str(WORKER), json.dumps(spec)],
                cwd=ROOT,
                env=clean_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        deadline = time.monotonic() + 45
        while len(list(barrier.glob("ready-*"))) < workers:
            failed = [p for p in processes if p.poll() not in (None, 0)]
            assert not failed, failed[0].communicate()[1]
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.02)
        (barrier / "go").touch()
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def worker_config(database_url, sandbox, redis_url, tmp_path, **extra) -> dict:
    config = base_config(database_url, tmp_path / "instance")
    config.pop("SERVER_NAME")
    config.update(
        WECHAT_APPID=sandbox.appid,
        WECHAT_SECRET=sandbox.secret,
        WECHAT_API_BASE=sandbox.url,
        REDIS_URL=redis_url,
        **extra,
    )
    return config


def test_eight_processes_hammering_the_token_service_cause_one_wechat_call(
    store, database_url, sandbox, shared_redis, tmp_path
):
    config = worker_config(database_url, sandbox, shared_redis, tmp_path)
    reports = run_workers(tmp_path, config, calls=20)
    assert sandbox.stable_calls() == 1
    assert sandbox.stable_fetches() == 1
    assert {tuple(r["tokens"]) for r in reports} == {(reports[0]["tokens"][0],)}, "one token everywhere"
    sources = sum((r["sources"].get("wechat", 0) for r in reports), 0)
    assert sources == 1, "exactly one process fetched; the others reused what it stored"
    shared = "redis" if store == "redis" else "database"
    assert sum(r["sources"].get(shared, 0) for r in reports) >= WORKERS - 1
    assert all(r["calls"] == 20 and not r["errors"] for r in reports)


@dataclass(frozen=True)
class StableCall:
    """One normal-mode ``stable_token`` call as the sandbox answered it."""

    rotated: bool  # the sandbox issued a new token for this call
    remaining: float  # seconds the returned token had left


def record_stable_calls(sandbox, monkeypatch) -> list[StableCall]:
    """Note every stable_token call the sandbox (running in this process) answers; observation only."""
    state = sandbox.server.state
    original = sandbox_tokens.stable_token
    calls: list[StableCall] = []

    def recorded(state_, force_refresh):
        with state.lock:  # re-entrant: the fetch counter cannot move under us between before and after
            before = state.token_fetches["stable"]
            result = original(state_, force_refresh)
            if not isinstance(result, int):
                record, _ = result
                rotated = state.token_fetches["stable"] > before
                calls.append(StableCall(rotated, record.expires_at - state.now()))
            return result

    monkeypatch.setattr(sandbox_tokens, "stable_token", recorded)
    return calls


def test_with_a_short_token_lifetime_there_is_one_fetch_per_expiry_period(
    store, database_url, request, shared_redis, tmp_path, monkeypatch
):
    sandbox = request.getfixturevalue("sandbox")
    ttl = 1.0
    sandbox.server.state.config["TOKEN_TTL"] = ttl
    calls = record_stable_calls(sandbox, monkeypatch)
    # Our margin (20 ms) is inside the sandbox's renewal window (TTL/24 ≈ 42 ms), so a refresh normally renews.
    config = worker_config(database_url, sandbox, shared_redis, tmp_path, WECHAT_TOKEN_REFRESH_MARGIN=0.02)
    # Four processes are enough to contend for each renewal and keep the run short on a small machine.
    reports = run_workers(tmp_path, config, workers=4, seconds=2.5, use_every=50)
    fetches = sandbox.stable_fetches()
    assert len(calls) == sandbox.stable_calls() and sum(c.rotated for c in calls) == fetches
    # A process that asks after another one renewed gets that fresh token back, with most of its life left.
    # A call may legitimately get the old token in its last moments instead: on a loaded machine our expiry
    # estimate (counted from before the request) can run ahead of the sandbox's by more than its renewal
    # window, and with a 1 s lifetime expires_in then truncates to 0, so it is asked again until it renews.
    wasted = [c for c in calls if not c.rotated and c.remaining > ttl / 2]
    assert not wasted, ("no call was wasted on a token someone else had already renewed", wasted)
    # Tokens were needed from the first loop's start to the last loop's end.
    elapsed = max(r["ended"] for r in reports) - min(r["started"] for r in reports)
    periods = math.ceil(elapsed / ttl)
    assert periods - 1 <= fetches <= periods + 1, (fetches, len(calls), elapsed)
    assert all(not r["errors"] for r in reports), reports
    # Every process moved through the same tokens in the same order.
    longest = max((r["tokens"] for r in reports), key=len)
    for report in reports:
        positions = [longest.index(t) for t in report["tokens"]]
        assert positions == sorted(positions)


def test_six_wechat_check_commands_at_once_cause_one_token_call(store, database_url, sandbox, shared_redis):
    env = {
        **clean_env(),
        "FLASK_APP": "wsgi",
        "TONGZHI_ENV": "embedded",
        "SECRET_KEY": "wechat-check-test-secret-key-0123",
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "false",
        "WECHAT_APPID": sandbox.appid,
        "WECHAT_SECRET": sandbox.secret,
        "WECHAT_API_BASE": sandbox.url,
    }
    if shared_redis:
        env["REDIS_URL"] = shared_redis
    processes = [
        subprocess.Popen(
            [FLASK, "wechat-check"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert out.startswith(f"OK: {len(sandbox.templates(2)) + len(sandbox.templates(3))} template(s)")
        assert sandbox.secret not in out + err
    assert sandbox.stable_calls() == 1
    assert sum("from wechat" in out for out, _ in outputs) == 1
