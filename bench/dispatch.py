"""Dispatch throughput: Tongzhi's engine against a bare client, on a local WeChat stub with a 30 ms round trip.

    .venv/bin/python bench/dispatch.py --workers 1 --runs 3            # SQLite, N=20000, 256 in flight
    .venv/bin/python bench/dispatch.py --n 200000 --runs 1             # peak memory must stay flat as N grows
    .venv/bin/python bench/dispatch.py --workers 1 --runs 3 --concurrency 64 --shape   # + the batch shape alone
    .venv/bin/python bench/dispatch.py --workers 2 --runs 3 --database-url postgresql+psycopg://postgres@127.0.0.1/tz_bench_dispatch

What runs:
1. ``bench/wechat_stub.py`` in its own process (asyncio; answers send and stable_token after --latency-ms).
2. A fresh SQLite database (or the PostgreSQL one given, its schema recreated), migrated; N users, each
   granted one credit of one template (one accept event each), and N pending campaign deliveries;
   on PostgreSQL then ``ANALYZE``d, as autovacuum would have done in service.
3. ``--runs`` rounds; in each, for each worker count, two phases against the same stub, their order
   alternating from round to round (the machine's load, ``os.getloadavg()``, printed before each):
   * the engine: worker processes running ``Dispatcher.drain`` (claim with credit reservation, bulk
     send, batched fenced finalize with ledger settlement) until every row is final, each from the same
     seeded database. Each reports its wall time, CPU seconds and peak RSS;
   * the bare client: as many processes, each with the engine's keep-alive pool
     (``dashboard.wechat.keepalive.KeepAlivePool``, the same connection limit) and the same number of
     requests in flight, sending the same request bodies, with no database and no bookkeeping: the
     ceiling the engine is measured against (its rate is printed as a ratio of this one);
   * with ``--shape``, a third phase, the engine's *batch shape* without its database: as many
     processes, each with the engine's bulk funnel (``dashboard.wechat.bulk.BulkSender``) sending
     batches of the in-flight count the way ``Dispatcher.drain`` does (a durable record before each
     batch, an fsync'd append standing for the start's commit; the next batch only once every answer of
     the one in flight is back). What it loses against the bare client is the cost of issue 10's crash
     story alone; what the engine loses against it is its database work. ``--shape-group G``: the
     other shape that story allows, the slots refilled as soon as G are free, each refill recorded first.
4. Rows written per message: every row the engine INSERTs or UPDATEs, per table, divided by the
   messages. PostgreSQL: ``pg_stat_user_tables`` (``n_tup_ins``, ``n_tup_upd``) before and after each
   engine phase. SQLite (no such counters): one extra, untimed engine run of ``--count-n`` messages on a
   copy of the seeded file with a counting trigger on each table.
5. ``--profile-engine PATH``: each engine worker's main thread (its database work) profiled with cProfile
   on CPU time, written to ``PATH.<worker>`` for ``pstats``. ``--steps``: each engine worker's wall time
   by step of the drain (claim, start, waiting for answers, finalize) and its slowest statements.
6. Optionally (``--naive-n``, default 0) the loop many tutorials show: ``requests.post`` the token
   endpoint, then the send, one message after the other.
Loopback only; every loop is bounded by N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_app(database_url: str, stub: str, instance: Path):
    from dashboard import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WECHAT_APPID": "wxbench000000000",
            "WECHAT_SECRET": "bench-secret",
            "WECHAT_API_BASE": stub,
            "INSTANCE_PATH": str(instance),
        }
    )


def seed(database_url: str, stub: str, instance: Path, n: int) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from dashboard.extensions import db
    from dashboard.grants.services import add_events
    from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser, utcnow
    from dashboard.models.grants import GrantBalance

    app = make_app(database_url, stub, instance)
    with app.app_context():
        if not database_url.startswith("sqlite"):
            # A fresh schema each run (the bench owns the database it is given).
            db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade(revision="heads")
        chunk = 5000
        for start in range(0, n, chunk):
            ids = range(start, min(start + chunk, n))
            db.session.execute(sa.insert(WechatUser), [{"openid": f"obench{i:08d}"} for i in ids])
            now = utcnow()
            # One accept each, written as the ledger writes it: an event and the balance it leaves.
            add_events(
                db.session,
                [
                    {
                        "user_id": i + 1,
                        "template_id": "TBENCH",
                        "template_known": False,
                        "kind": "one_time",
                        "source": "client",
                        "status": "accept",
                        "credit_delta": 1,
                        "credits_after": 1,
                        "active_after": False,
                        "scene": None,
                        "page": None,
                        "note": "",
                        "report_id": None,
                        "push_id": None,
                        "delivery_id": None,
                        "pairs_with_id": None,
                        "occurred_at": now,
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            db.session.execute(
                sa.insert(GrantBalance),
                [
                    {
                        "user_id": i + 1,
                        "template_id": "TBENCH",
                        "kind": "one_time",
                        "credits": 1,
                        "active": False,
                        "last_status": "accept",
                        "granted_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            db.session.execute(
                sa.insert(Delivery),
                [
                    {
                        "source": DeliverySource.campaign,
                        "campaign_id": 1,
                        "user_id": i + 1,
                        "openid": f"obench{i:08d}",
                        "template_id": "TBENCH",
                        "data": {"thing1": "您的订单已发货", "character_string2": f"A{i:010d}"},
                        "state": DeliveryState.pending,
                        "attempts": 0,
                        "reason": "",
                        "errmsg": "",
                        "miniprogram_state": "formal",
                        "lang": "zh_CN",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            db.session.commit()
        db.session.execute(sa.text("DELETE FROM dispatch_state"))
        db.session.commit()
        if not database_url.startswith("sqlite"):
            # Statistics, as a database in service has them (autovacuum gathers them within a minute
            # of a big change): without them the planner guesses, and the ledger's reservation read
            # every balance of the template (9 ms a claim instead of 0.9).
            db.session.execute(sa.text("ANALYZE"))
            db.session.commit()
        if database_url.startswith("sqlite"):
            # Everything into the main file, so a copy of it is the whole database.
            db.session.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.remove()
        db.engine.dispose()


def time_steps() -> dict[str, float]:
    """Wrap the drain's steps in wall-clock timers (``--steps``): where a worker's time goes."""
    from dashboard.dispatch import engine, sender

    totals: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - began

        return wrapper

    for name in ("claim_due", "start_claims", "finalize", "release_unstarted"):
        setattr(engine, name, timed(name, getattr(engine, name)))
    sender.PendingBatch.results = timed("wait_for_answers", sender.PendingBatch.results)
    sender.PendingBatch.wait_written = timed("wait_written", sender.PendingBatch.wait_written)
    sender.BatchSender.submit = timed("submit", sender.BatchSender.submit)
    return totals


def time_statements(engine) -> dict[str, list]:
    """Wall time per statement (its first 100 characters) as the worker sees it (``--steps``)."""
    import sqlalchemy as sa

    totals: dict[str, list] = {}

    @sa.event.listens_for(engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["began"] = time.perf_counter()

    @sa.event.listens_for(engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):
        entry = totals.setdefault(" ".join(statement.split())[:100], [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info["began"]

    return totals


def run_engine(
    database_url: str,
    stub: str,
    instance: Path,
    concurrency: int,
    profile_to: str | None = None,
    steps: bool = False,
) -> dict:
    """In a worker process of its own, so its peak memory is the engine's alone. ``profile_to``: write
    a cProfile of the drain there (CPU time, the worker's main thread: its database work; the sends
    run on the sender's own thread). ``steps``: also report wall time by step and by statement."""
    from dashboard.dispatch.claim import load_dispatch_state
    from dashboard.dispatch.engine import Dispatcher
    from dashboard.dispatch.ledger_adapter import grants_ledger
    from dashboard.dispatch.write_lock import write_transaction
    from dashboard.extensions import db

    app = make_app(database_url, stub, instance)
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        state.rate_per_second, state.tokens, state.concurrency = 1_000_000, 1_000_000.0, concurrency
        statements = time_statements(db.engine) if steps else {}
    step_wall = time_steps() if steps else {}
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=concurrency)
    wall0, cpu0 = time.monotonic(), time.process_time()
    if profile_to:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
        claimed = profiler.runcall(dispatcher.drain, seconds=3600)
        profiler.dump_stats(profile_to)
    else:
        claimed = dispatcher.drain(seconds=3600)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    dispatcher.close()
    return {
        "claimed": claimed,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "steps_s": {name: round(seconds, 2) for name, seconds in step_wall.items()},
        "statements": sorted(
            ([round(total, 3), count, sql] for sql, (count, total) in statements.items()), reverse=True
        )[:12],
    }


def final_counts(database_url: str, stub: str, instance: Path) -> tuple[dict, int]:
    """Read after every worker has finished: rows by state, and ledger ``spent`` events."""
    import sqlalchemy as sa

    from dashboard.extensions import db

    with make_app(database_url, stub, instance).app_context():
        by_state = dict(
            db.session.execute(sa.text("SELECT state, count(*) FROM delivery GROUP BY state")).all()
        )
        spent = db.session.execute(
            sa.text("SELECT count(*) FROM grant_event WHERE status = 'spent'")
        ).scalar()
        db.session.remove()
    return by_state, spent


def run_workers(
    database_url: str,
    stub: str,
    instance: Path,
    workers: int,
    concurrency: int,
    profile_to: str | None = None,
    steps: bool = False,
) -> dict:
    """``workers`` engine processes side by side on one database, until every row is final."""
    profiling = [
        ["--profile-engine", f"{profile_to}.{number}"] if profile_to else [] for number in range(workers)
    ]
    if steps:
        profiling = [[*options, "--steps"] for options in profiling]
    children = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and script)
            [
                sys.executable,
                __file__,
                "--concurrency",
                str(concurrency),
                "--engine-child",
                database_url,
                stub,
                str(instance),
                *profiling[number],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        for number in range(workers)
    ]
    reports = []
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0 or not out.strip():
            raise SystemExit(f"an engine worker failed (exit {child.returncode}):\n{err[-3000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
        if reports[-1]["steps_s"]:
            print(f"    worker wall {reports[-1]['wall_s']:.2f} s, by step: {reports[-1]['steps_s']}")
            for total, count, sql in reports[-1]["statements"]:
                print(f"      {total:7.3f} s {count:6,d}x {sql}")
    states, spent = final_counts(database_url, stub, instance)
    return {
        "claimed": sum(r["claimed"] for r in reports),
        "wall_s": max(r["wall_s"] for r in reports),
        "cpu_s": sum(r["cpu_s"] for r in reports),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reports),
        "states": states,
        "spent_events": spent,
    }


def run_naive(stub: str, n: int) -> dict:
    import requests

    wall0, cpu0 = time.monotonic(), time.process_time()
    for i in range(n):
        token = requests.post(
            f"{stub}/cgi-bin/stable_token",
            json={"grant_type": "client_credential", "appid": "wxbench", "secret": "s"},
            timeout=10,
        ).json()["access_token"]
        reply = requests.post(
            f"{stub}/cgi-bin/message/subscribe/send?access_token={token}",
            json={
                "touser": f"obench{i:08d}",
                "template_id": "TBENCH",
                "data": {"thing1": {"value": "您的订单已发货"}},
            },
            timeout=10,
        ).json()
        assert reply["errcode"] == 0
    return {
        "sent": n,
        "wall_s": time.monotonic() - wall0,
        "cpu_s": time.process_time() - cpu0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_bare(stub: str, n: int, concurrency: int) -> dict:
    """One bare-client process: ``n`` sends, ``concurrency`` in flight, over the engine's keep-alive pool.

    Same request bodies as the engine's (``build_send_body``, ``encode_json``), one token asked once,
    each answer's JSON read for its errcode; nothing else (no database, no outcome objects).
    """
    import asyncio

    from dashboard.wechat.keepalive import KeepAlivePool
    from dashboard.wechat.protocol import JSON_CONTENT_TYPE, SEND_PATH, build_send_body, encode_json

    async def main() -> tuple[int, float]:
        pool = KeepAlivePool(stub, limit=concurrency, connect_timeout=3.05, read_timeout=10.0, env={})
        token_reply = await pool.post(
            "/cgi-bin/stable_token",
            json.dumps({"grant_type": "client_credential", "appid": "wxbench", "secret": "s"}).encode(),
            JSON_CONTENT_TYPE,
        )
        target = f"{SEND_PATH}?access_token={json.loads(token_reply.body)['access_token']}"
        counter = iter(range(n))
        ok = 0

        async def lane() -> None:
            nonlocal ok
            for i in counter:
                body = encode_json(
                    build_send_body(
                        f"obench{i:08d}",
                        "TBENCH",
                        {"thing1": "您的订单已发货", "character_string2": f"A{i:010d}"},
                        None,
                        "formal",
                        "zh_CN",
                    )
                )
                reply = await pool.post(target, body, JSON_CONTENT_TYPE)
                ok += json.loads(reply.body)["errcode"] == 0

        t0 = time.monotonic()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        wall = time.monotonic() - t0
        pool.close()
        return ok, wall

    cpu0 = time.process_time()
    ok, wall = asyncio.run(main())
    return {
        "sent": ok,
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_shape(stub: str, n: int, concurrency: int, journal: Path, group: int = 0) -> dict:
    """One process of the engine's batch shape with no database (``--shape``): ``n`` sends through the
    engine's bulk funnel in batches of ``concurrency``; before each batch an fsync'd append to
    ``journal`` (what committing the batch's start costs the engine), and the next batch only once every
    answer of this one is back. Same request bodies as the bare client's.

    ``group`` (``--shape-group``, under ``concurrency``): the other shape issue 10 allows, slots refilled
    as they free instead of a batch at a time: whenever ``group`` slots are free, as many as are free go
    out (an fsync'd record first) while the others are still in flight."""
    import threading
    from concurrent.futures import FIRST_COMPLETED, wait

    import requests

    from dashboard.wechat.bulk import BulkSender, SendRequest

    class OneToken:
        def __init__(self) -> None:
            reply = requests.post(
                f"{stub}/cgi-bin/stable_token",
                json={"grant_type": "client_credential", "appid": "wxbench", "secret": "s"},
                timeout=10,
            )
            self.token = reply.json()["access_token"]

        def get_token(self) -> str:
            return self.token

        def invalidate(self, failed_token: str) -> None:
            return None

    sender = BulkSender(stub, OneToken(), concurrency=concurrency)
    group = group if 0 < group < concurrency else concurrency
    ok, first, free, in_flight = 0, 0, concurrency, {}
    cpu0 = time.process_time()
    t0 = time.monotonic()
    with open(journal, "ab") as record:
        while first < n or in_flight:
            if first < n and free >= min(group, n - first):
                size = min(free, n - first)
                batch = [
                    SendRequest(
                        i,
                        f"obench{i:08d}",
                        "TBENCH",
                        {"thing1": "您的订单已发货", "character_string2": f"A{i:010d}"},
                    )
                    for i in range(first, first + size)
                ]
                record.write(b"%d\n" % first)
                record.flush()
                os.fsync(record.fileno())
                in_flight[sender.submit(batch, threading.Event())] = size
                first, free = first + size, free - size
                continue
            done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            for future in done:
                ok += sum(outcome.ok for outcome in future.result())
                free += in_flight.pop(future)
    wall = time.monotonic() - t0
    sender.close()
    return {
        "sent": ok,
        "wall_s": wall,
        "cpu_s": time.process_time() - cpu0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_client_processes(
    stub: str, n: int, workers: int, concurrency: int, child: str = "--bare-child", shape_group: int = 0
) -> dict:
    """``workers`` bare-client (or ``--shape-child``) processes side by side, N split between them,
    started together."""
    shares = [n // workers + (1 if k < n % workers else 0) for k in range(workers)]
    children = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and script)
            [
                sys.executable,
                __file__,
                "--concurrency",
                str(concurrency),
                "--shape-group",
                str(shape_group),
                child,
                stub,
                str(share),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        for share in shares
    ]
    reports = []
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0 or not out.strip():
            raise SystemExit(f"a bare client failed (exit {child.returncode}):\n{err[-3000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "sent": sum(r["sent"] for r in reports),
        "wall_s": max(r["wall_s"] for r in reports),
        "cpu_s": sum(r["cpu_s"] for r in reports),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reports),
    }


COUNTED_TABLES = (
    "delivery",
    "delivery_attempt",
    "grant_event",
    "grant_balance",
    "dispatch_state",
    "sent_report",
)


def pg_write_counters(database_url: str) -> dict[tuple[str, str], int]:
    """Rows inserted and updated so far, per table, from PostgreSQL's statistics (the workers have exited,
    so their counters are flushed)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
            rows = connection.execute(
                sa.text(
                    "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables WHERE schemaname = 'public'"
                )
            ).all()
    finally:
        engine.dispose()
    counters = {}
    for table, inserted, updated in rows:
        counters[(table, "insert")] = int(inserted)
        counters[(table, "update")] = int(updated)
    return counters


def sqlite_add_counting_triggers(path: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE bench_writes (tbl TEXT, op TEXT, n INTEGER, PRIMARY KEY (tbl, op))")
    for table in COUNTED_TABLES:
        for op in ("insert", "update"):
            connection.execute("INSERT INTO bench_writes VALUES (?, ?, 0)", (table, op))
            connection.execute(
                f"CREATE TRIGGER bench_{table}_{op} AFTER {op.upper()} ON {table} BEGIN "  # noqa: S608
                f"UPDATE bench_writes SET n = n + 1 WHERE tbl = '{table}' AND op = '{op}'; END"
            )
    connection.commit()
    connection.close()


def sqlite_write_counters(path: Path) -> dict[tuple[str, str], int]:
    import sqlite3

    connection = sqlite3.connect(path)
    rows = connection.execute("SELECT tbl, op, n FROM bench_writes").fetchall()
    connection.close()
    return {(table, op): n for table, op, n in rows}


def writes_per_message(before: dict, after: dict, messages: int) -> tuple[float, dict[str, float]]:
    changed = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    detail = {f"{table} {op}": count / messages for (table, op), count in sorted(changed.items()) if count}
    return sum(changed.values()) / messages, detail


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="messages per phase")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds of bare client and engine")
    parser.add_argument("--naive-n", type=int, default=0, help="messages for the naive loop (0: skip it)")
    parser.add_argument("--count-n", type=int, default=2_000, help="SQLite: messages of the counting run")
    parser.add_argument("--concurrency", type=int, default=256, help="requests in flight per worker")
    parser.add_argument(
        "--workers",
        default="1",
        help="engine worker (and bare client) processes side by side; a comma list runs each count",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL URL to run on (its public schema is dropped and recreated); default: a SQLite file",
    )
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument(
        "--profile-engine",
        metavar="PATH",
        help="write each engine worker's cProfile (CPU time, main thread) to PATH.<worker>, for pstats",
    )
    parser.add_argument(
        "--steps",
        action="store_true",
        help="print each engine worker's wall time by step (claim, start, wait, finalize) and by statement",
    )
    parser.add_argument("--engine-child", nargs=3, metavar=("DB", "STUB", "INSTANCE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--shape",
        action="store_true",
        help="also run the engine's batch shape without its database (bulk funnel, batches, a durable "
        "record before each) and print the engine's rate as a ratio of it",
    )
    parser.add_argument(
        "--shape-group",
        type=int,
        default=0,
        metavar="G",
        help="with --shape: refill the slots as soon as G are free (each refill with its own record) "
        "instead of a batch of the whole in-flight count after the last answer",
    )
    parser.add_argument("--bare-child", nargs=2, metavar=("STUB", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--shape-child", nargs=2, metavar=("STUB", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        database_url, stub, instance = args.engine_child
        print(
            json.dumps(
                run_engine(
                    database_url, stub, Path(instance), args.concurrency, args.profile_engine, args.steps
                )
            )
        )
        return 0
    if args.bare_child:
        stub, n = args.bare_child
        print(json.dumps(run_bare(stub, int(n), args.concurrency)))
        return 0
    if args.shape_child:
        stub, n = args.shape_child
        with tempfile.TemporaryDirectory() as folder:  # the same file system as the bench's database
            print(
                json.dumps(
                    run_shape(stub, int(n), args.concurrency, Path(folder) / "journal", args.shape_group)
                )
            )
        return 0

    port = free_port()
    stub_process = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [
            sys.executable,
            str(ROOT / "bench" / "wechat_stub.py"),
            "--port",
            str(port),
            "--latency-ms",
            str(args.latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    stub_process.stdout.readline()  # "stub listening ..."
    stub = f"http://127.0.0.1:{port}"
    worker_counts = [int(count) for count in args.workers.split(",")]
    postgres = bool(args.database_url)
    backend = "PostgreSQL" if postgres else "SQLite (WAL, synchronous=FULL)"
    command = " ".join(["python", "bench/dispatch.py", *sys.argv[1:]])
    print(f"command: {command}")
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {backend}, "
        f"stub round trip {args.latency_ms:g} ms (the stub shares the cores)",
        flush=True,
    )
    engine_runs: dict[int, list[dict]] = {w: [] for w in worker_counts}
    bare_runs: dict[int, list[dict]] = {w: [] for w in worker_counts}
    shape_runs: dict[int, list[dict]] = {w: [] for w in worker_counts}
    shape_label = (
        f"refilled at {args.shape_group} free" if 0 < args.shape_group < args.concurrency else "batch shape"
    )
    shape_name = f"{shape_label}, no database"
    writes: dict[int, list[tuple[float, dict]]] = {w: [] for w in worker_counts}
    naive = None
    try:
        with tempfile.TemporaryDirectory() as folder:
            instance, seeded = Path(folder) / "instance", Path(folder) / "seeded.db"
            if not postgres:
                t0 = time.monotonic()
                seed(f"sqlite:///{seeded}", stub, instance, args.n)
                print(f"seeded {args.n} users/grants/deliveries in {time.monotonic() - t0:.1f} s", flush=True)
            for round_number in range(args.runs):
                for workers in worker_counts:
                    if postgres:
                        database_url = args.database_url
                        t0 = time.monotonic()
                        seed(database_url, stub, instance, args.n)
                        print(f"seeded {args.n} in {time.monotonic() - t0:.1f} s", flush=True)
                    else:  # every run starts from the same seeded file
                        run_db = Path(folder) / "run.db"
                        shutil.copyfile(seeded, run_db)
                        database_url = f"sqlite:///{run_db}"
                    phases = ["bare", "shape", "engine"] if args.shape else ["bare", "engine"]
                    shift = round_number % len(phases)  # each phase in each place in turn
                    phases = phases[shift:] + phases[:shift]
                    for phase in phases:
                        print(
                            f"round {round_number + 1}, {workers} worker(s), {phase}: load {load()}",
                            flush=True,
                        )
                        if phase == "bare":
                            bare = run_client_processes(stub, args.n, workers, args.concurrency)
                            bare_runs[workers].append(bare)
                            print(f"  bare client: {bare['sent'] / bare['wall_s']:,.0f} msg/s", flush=True)
                            continue
                        if phase == "shape":
                            shape = run_client_processes(
                                stub, args.n, workers, args.concurrency, "--shape-child", args.shape_group
                            )
                            shape_runs[workers].append(shape)
                            print(
                                f"  {shape_name}: {shape['sent'] / shape['wall_s']:,.0f} msg/s",
                                flush=True,
                            )
                            continue
                        before = pg_write_counters(database_url) if postgres else None
                        engine = run_workers(
                            database_url,
                            stub,
                            instance,
                            workers,
                            args.concurrency,
                            args.profile_engine,
                            args.steps,
                        )
                        engine_runs[workers].append(engine)
                        line = f"  engine: {engine['claimed'] / engine['wall_s']:,.0f} msg/s"
                        if postgres:
                            per, detail = writes_per_message(
                                before, pg_write_counters(database_url), engine["claimed"]
                            )
                            writes[workers].append((per, detail))
                            line += f", rows written per message {per:.2f}"
                        print(line, flush=True)
            if not postgres and args.count_n:
                counted, count_n = Path(folder) / "counted.db", min(args.count_n, args.n)
                seed(f"sqlite:///{counted}", stub, instance, count_n)
                sqlite_add_counting_triggers(counted)
                before = sqlite_write_counters(counted)
                print(f"counting run ({count_n} messages, 1 worker, triggers): load {load()}", flush=True)
                engine = run_workers(f"sqlite:///{counted}", stub, instance, 1, args.concurrency)
                per, detail = writes_per_message(before, sqlite_write_counters(counted), engine["claimed"])
                for workers in worker_counts:
                    writes[workers].append((per, detail))
        if args.naive_n:
            print(f"naive loop: load {load()}", flush=True)
            naive = run_naive(stub, args.naive_n)
    finally:
        stub_process.terminate()
        stub_process.wait(timeout=10)

    print()
    print(
        "| workers | phase | runs | msg/s min / median / max | CPU ms/msg (median) | peak RSS MB | final states | `spent` events |"
    )
    print("|---:|---|---:|---:|---:|---:|---|---:|")
    for workers in worker_counts:
        bare, engine = bare_runs[workers], engine_runs[workers]
        print(
            f"| {workers} | bare client | {len(bare)} | {spread([b['sent'] / b['wall_s'] for b in bare])} | "
            f"{statistics.median(b['cpu_s'] / b['sent'] * 1000 for b in bare):.2f} | "
            f"{max(b['peak_rss_mb'] for b in bare):.0f} | | |"
        )
        shape = shape_runs[workers]
        if shape:
            print(
                f"| {workers} | {shape_name} | {len(shape)} | "
                f"{spread([b['sent'] / b['wall_s'] for b in shape])} | "
                f"{statistics.median(b['cpu_s'] / b['sent'] * 1000 for b in shape):.2f} | "
                f"{max(b['peak_rss_mb'] for b in shape):.0f} | | |"
            )
        states = {json.dumps(e["states"], sort_keys=True) for e in engine}
        spent = sorted({e["spent_events"] for e in engine})
        print(
            f"| {workers} | engine | {len(engine)} | {spread([e['claimed'] / e['wall_s'] for e in engine])} | "
            f"{statistics.median(e['cpu_s'] / e['claimed'] * 1000 for e in engine):.2f} | "
            f"{max(e['peak_rss_mb'] for e in engine):.0f} | {' / '.join(states)} | {spent} |"
        )
    if naive is not None:
        print(
            f"| 1 | naive loop (token + send per message) | 1 | {naive['sent'] / naive['wall_s']:.1f} | "
            f"{naive['cpu_s'] / naive['sent'] * 1000:.2f} | {naive['peak_rss_mb']:.0f} | | |"
        )
    print()
    for workers in worker_counts:
        ratios = [
            e["claimed"] / e["wall_s"] / (b["sent"] / b["wall_s"])
            for e, b in zip(engine_runs[workers], bare_runs[workers], strict=True)
        ]
        median_ratio = statistics.median(
            e["claimed"] / e["wall_s"] for e in engine_runs[workers]
        ) / statistics.median(b["sent"] / b["wall_s"] for b in bare_runs[workers])
        print(
            f"{workers} worker(s): engine / bare client = {median_ratio:.2f} (medians); per round "
            + ", ".join(f"{r:.2f}" for r in ratios)
        )
        if shape_runs[workers]:
            bare_rates = [r["sent"] / r["wall_s"] for r in bare_runs[workers]]
            shape_rates = [r["sent"] / r["wall_s"] for r in shape_runs[workers]]
            engine_rates = [r["claimed"] / r["wall_s"] for r in engine_runs[workers]]
            print(
                f"  {shape_label} / bare client = "
                f"{statistics.median(shape_rates) / statistics.median(bare_rates):.2f} (medians); per round "
                + ", ".join(f"{s / b:.2f}" for s, b in zip(shape_rates, bare_rates, strict=True))
            )
            print(
                f"  engine / {shape_label} = "
                f"{statistics.median(engine_rates) / statistics.median(shape_rates):.2f} (medians); per round "
                + ", ".join(f"{e / s:.2f}" for e, s in zip(engine_rates, shape_rates, strict=True))
            )
        for per, detail in writes[workers][:1] if not postgres else writes[workers]:
            print(
                f"  rows written per message: {per:.2f} ("
                + ", ".join(f"{name} {value:.2f}" for name, value in detail.items())
                + ")"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
