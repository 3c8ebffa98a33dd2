"""Dispatch throughput: Tongzhi's engine against a naive loop, on a local WeChat stub with a 30 ms round trip.

    .venv/bin/python bench/dispatch.py                 # N=20000 messages; 1 worker, then 2; 256 in flight each
    .venv/bin/python bench/dispatch.py --n 200000      # peak memory must stay flat as N grows
    .venv/bin/python bench/dispatch.py --workers 1,2,4 --database-url postgresql+psycopg://postgres@127.0.0.1/test

What runs:
1. ``bench/wechat_stub.py`` in its own process (asyncio; answers send and stable_token after --latency-ms).
2. A fresh SQLite database (or the PostgreSQL one given, its schema recreated), migrated; N users, each granted one credit of one template *through the
   ledger's own functions* (one accept event each), and N pending campaign deliveries.
3. The engine: worker processes (1, then 2, by default; each run starts from the same seeded database)
   running ``Dispatcher.drain`` (claim with credit reservation, bulk send, batched fenced finalize with
   ledger settlement) until every row is final. Each reports its wall time, CPU seconds and peak RSS.
4. The naive loop many tutorials show: for each message, ``requests.post`` the token endpoint, then
   ``requests.post`` the send, one after the other (no ledger, no database).
Loopback only; every loop is bounded by N.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
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
        if database_url.startswith("sqlite"):
            # Everything into the main file, so a copy of it is the whole database.
            db.session.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.remove()
        db.engine.dispose()


def run_engine(database_url: str, stub: str, instance: Path, concurrency: int) -> dict:
    """In a worker process of its own, so its peak memory is the engine's alone."""
    from dashboard.dispatch.claim import load_dispatch_state
    from dashboard.dispatch.engine import Dispatcher
    from dashboard.dispatch.ledger_adapter import grants_ledger
    from dashboard.dispatch.write_lock import write_transaction
    from dashboard.extensions import db

    app = make_app(database_url, stub, instance)
    with app.app_context(), write_transaction(db.engine) as session:
        state = load_dispatch_state(session)
        state.rate_per_second, state.tokens, state.concurrency = 1_000_000, 1_000_000.0, concurrency
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=concurrency)
    wall0, cpu0 = time.monotonic(), time.process_time()
    claimed = dispatcher.drain(seconds=3600)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    dispatcher.close()
    return {
        "claimed": claimed,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
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


def run_workers(database_url: str, stub: str, instance: Path, workers: int, concurrency: int) -> dict:
    """``workers`` engine processes side by side on one database, until every row is final."""
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
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        for _ in range(workers)
    ]
    reports = []
    for child in children:
        out, err = child.communicate()
        if child.returncode != 0 or not out.strip():
            raise SystemExit(f"an engine worker failed (exit {child.returncode}):\n{err[-3000:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="messages for the engine")
    parser.add_argument("--naive-n", type=int, default=300, help="messages for the naive loop (it is slow)")
    parser.add_argument("--concurrency", type=int, default=256, help="requests in flight per worker")
    parser.add_argument(
        "--workers",
        default="1,2",
        help="engine worker processes side by side; a comma list runs once per count (default: 1,2)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL URL to run on (its public schema is dropped and recreated); default: a SQLite file",
    )
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--engine-child", nargs=3, metavar=("DB", "STUB", "INSTANCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        database_url, stub, instance = args.engine_child
        print(json.dumps(run_engine(database_url, stub, Path(instance), args.concurrency)))
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
    backend = "PostgreSQL" if args.database_url else "SQLite (WAL, synchronous=FULL)"
    runs, seed_s = [], 0.0
    try:
        with tempfile.TemporaryDirectory() as folder:
            instance, seeded = Path(folder) / "instance", Path(folder) / "seeded.db"
            if not args.database_url:
                t0 = time.monotonic()
                seed(f"sqlite:///{seeded}", stub, instance, args.n)
                seed_s = time.monotonic() - t0
            for number, workers in enumerate(worker_counts):
                if args.database_url:
                    database_url = args.database_url
                    t0 = time.monotonic()
                    seed(database_url, stub, instance, args.n)
                    seed_s = time.monotonic() - t0
                else:  # every run starts from the same seeded file
                    run_db = Path(folder) / f"run{number}.db"
                    shutil.copyfile(seeded, run_db)
                    database_url = f"sqlite:///{run_db}"
                runs.append((workers, run_workers(database_url, stub, instance, workers, args.concurrency)))
        naive = run_naive(stub, args.naive_n)
    finally:
        stub_process.terminate()
        stub_process.wait(timeout=10)

    naive_rate = naive["sent"] / naive["wall_s"]
    command = " ".join(["python", "bench/dispatch.py", *sys.argv[1:]])
    print(f"command: {command}")
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {backend}, "
        f"stub round trip {args.latency_ms:g} ms (the stub shares the cores)"
    )
    print(f"seeded {args.n} users/grants/deliveries in {seed_s:.1f} s")
    print()
    print("| | messages | msg/s | CPU s | CPU ms/msg | peak RSS MB | final states | spent events |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for workers, engine in runs:
        rate = engine["claimed"] / engine["wall_s"]
        print(
            f"| Tongzhi engine, {workers} worker(s), concurrency {args.concurrency} each, with ledger | "
            f"{engine['claimed']} | {rate:.0f} | {engine['cpu_s']:.1f} | "
            f"{engine['cpu_s'] / max(engine['claimed'], 1) * 1000:.2f} | {engine['peak_rss_mb']:.0f} | "
            f"{engine['states']} | {engine['spent_events']} |"
        )
    print(
        f"| naive loop (token + send per message) | {naive['sent']} | {naive_rate:.1f} | {naive['cpu_s']:.1f} | "
        f"{naive['cpu_s'] / naive['sent'] * 1000:.2f} | {naive['peak_rss_mb']:.0f} | | |"
    )
    print()
    for workers, engine in runs:
        print(
            f"engine with {workers} worker(s) / naive: {engine['claimed'] / engine['wall_s'] / naive_rate:.0f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
