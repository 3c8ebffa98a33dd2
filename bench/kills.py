"""Unknowns per kill: how many deliveries a SIGKILLed worker leaves ``unknown``, and how many of those
never reached WeChat at all (the sandbox's own record of what it received).

    .venv/bin/python bench/kills.py                       # 10 kills, 2,000 deliveries, SQLite
    .venv/bin/python bench/kills.py --kills 5 --database-url postgresql+psycopg://postgres@127.0.0.1/test

What runs (loopback only, bounded by --kills and a per-kill deadline):
1. The WeChat sandbox in this process (``dashboard.sandbox``, 60 ms per send by default), each of N users
   granted one credit of one template there; our database seeded with the same N users, one credit
   each in our ledger and one pending campaign delivery each.
2. ``--kills`` times: start one ``flask worker`` (the real worker: Huey consumer, engine, bulk funnel),
   wait until it has sent ``--progress`` more messages, wait a little longer (a seeded random pause),
   SIGKILL it, let the lease run out and run the reconciler (``reconcile_expired_leases``).
3. After each kill: the deliveries that became ``unknown``, and how many of them the sandbox never
   received (no message to that openid): those were claimed but never written to the socket.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_PLACEHOLDER = re.compile(r"\{\{(\w+?)\.DATA\}\}")


def example_data(template: dict) -> dict[str, str]:
    """Valid keyword values for a gettemplate row, taken from its example (same line order as content)."""
    data = {}
    for line, example in zip(
        template["content"].splitlines(), template["example"].splitlines(), strict=False
    ):
        match = _PLACEHOLDER.search(line)
        if match:
            data[match.group(1)] = example[match.start() :]
    return data


def make_app(database_url: str, sandbox_url: str, instance: Path, appid: str, secret: str):
    from dashboard import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WECHAT_APPID": appid,
            "WECHAT_SECRET": secret,
            "WECHAT_API_BASE": sandbox_url,
            "INSTANCE_PATH": str(instance),
        }
    )


def seed(app, database_url: str, openids: list[str], template: dict, concurrency: int) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from dashboard.dispatch.claim import load_dispatch_state
    from dashboard.dispatch.write_lock import write_transaction
    from dashboard.extensions import db
    from dashboard.grants.services import record_answers
    from dashboard.models import Delivery, DeliverySource, WechatUser

    with app.app_context():
        if not database_url.startswith("sqlite"):
            db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade(revision="heads")
        data = example_data(template)
        for openid in openids:
            user = WechatUser(openid=openid)
            db.session.add(user)
            db.session.flush()
            record_answers(user.id, [(template["priTmplId"], "accept")], source="client")
            db.session.add(
                Delivery(
                    source=DeliverySource.campaign,
                    campaign_id=1,
                    user_id=user.id,
                    openid=openid,
                    template_id=template["priTmplId"],
                    data=data,
                )
            )
        db.session.commit()
        with write_transaction(db.engine) as session:
            load_dispatch_state(session).concurrency = concurrency
        db.session.remove()


def counts(app) -> dict[str, int]:
    import sqlalchemy as sa

    from dashboard.extensions import db

    with app.app_context():
        rows = db.session.execute(sa.text("SELECT state, count(*) FROM delivery GROUP BY state")).all()
        db.session.remove()
    return {str(state): count for state, count in rows}


def unknown_openids(app) -> set[str]:
    import sqlalchemy as sa

    from dashboard.extensions import db

    with app.app_context():
        found = {
            row[0]
            for row in db.session.execute(sa.text("SELECT openid FROM delivery WHERE state = 'unknown'"))
        }
        db.session.remove()
    return found


def reconcile(app) -> None:
    from dashboard.dispatch.finalize import reconcile_expired_leases
    from dashboard.dispatch.ledger_adapter import grants_ledger
    from dashboard.extensions import db

    with app.app_context():
        reconcile_expired_leases(db.engine, grants_ledger())


def received(sandbox_url: str) -> set[str]:
    reply = requests.get(f"{sandbox_url}/sandbox/api/messages", params={"limit": 1_000_000}, timeout=30)
    reply.raise_for_status()
    return {m["openid"] for m in reply.json()["messages"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="deliveries (and users)")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16, help="the operator's concurrency setting")
    parser.add_argument("--latency-ms", type=int, default=60, help="the sandbox's time per send")
    parser.add_argument("--progress", type=int, default=100, help="messages sent before each kill")
    parser.add_argument("--lease", type=int, default=2, help="DISPATCH_LEASE_SECONDS for the workers")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL (its public schema is recreated)"
    )
    args = parser.parse_args()

    from dashboard.sandbox import SandboxServer

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="tongzhi-kills-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'tongzhi.db'}"
    config = {"APPID": "wxkillbench000000", "SECRET": "kill-bench-secret-0123456789", "USERS": args.n}
    config["LATENCY_MS"] = args.latency_ms
    try:
        with SandboxServer(config) as sandbox:
            api = f"{sandbox.url}/sandbox/api"
            template = next(
                t for t in requests.get(f"{api}/templates", timeout=10).json()["templates"] if t["type"] == 2
            )
            openids, page = [], 1
            while len(openids) < args.n:
                users = requests.get(
                    f"{api}/users", params={"per_page": 500, "page": page}, timeout=10
                ).json()
                openids += [u["openid"] for u in users["users"]]
                page += 1
            openids = openids[: args.n]
            with requests.Session() as http:
                for openid in openids:
                    http.post(
                        f"{api}/users/{openid}/prompt",
                        json={"templates": {template["priTmplId"]: "accept"}},
                        timeout=10,
                    ).raise_for_status()
            app = make_app(database_url, sandbox.url, workdir, config["APPID"], config["SECRET"])
            seed(app, database_url, openids, template, args.concurrency)
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "TEST_DATABASE", "WECHAT_"))
            }
            env.update(
                FLASK_APP="wsgi",
                TONGZHI_ENV="embedded",
                SECRET_KEY="kill-bench-secret-key-0123456789",  # noqa: S106 (a throwaway bench database)
                DATABASE_URL=database_url,
                TONGZHI_INSTANCE_PATH=str(workdir / "instance"),
                AUTO_MIGRATE="false",
                WECHAT_APPID=config["APPID"],
                WECHAT_SECRET=config["SECRET"],
                WECHAT_API_BASE=sandbox.url,
                DISPATCH_LEASE_SECONDS=str(args.lease),
            )
            print(
                f"{args.n} deliveries, concurrency {args.concurrency}, {args.latency_ms} ms per send, lease {args.lease} s"
            )
            print(f"{'kill':>4} {'sent':>6} {'unknown':>8} {'never reached':>14} {'pending after':>14}")
            seen_unknown: set[str] = set()
            totals = [0, 0]
            kills = 0
            for number in range(1, args.kills + 1):
                before = counts(app).get("sent", 0)
                if before + args.progress > args.n:
                    break
                worker = subprocess.Popen(  # noqa: S603 (our own interpreter and the project's CLI)
                    [sys.executable, "-m", "flask", "worker"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                deadline = time.monotonic() + 60
                while counts(app).get("sent", 0) < before + args.progress and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 0.3))
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                time.sleep(args.lease + 0.5)
                reconcile(app)
                unknown = unknown_openids(app) - seen_unknown
                seen_unknown |= unknown
                never = len(unknown - received(sandbox.url))
                now = counts(app)
                pending = now.get("pending", 0) + now.get("retry_wait", 0)
                print(f"{number:>4} {now.get('sent', 0):>6} {len(unknown):>8} {never:>14} {pending:>14}")
                totals[0] += len(unknown)
                totals[1] += never
                kills += 1
            if kills:
                print(
                    f"{kills} kills: {totals[0]} unknown ({totals[0] / kills:.1f} per kill), "
                    f"{totals[1]} of them never reached the sandbox ({totals[1] / kills:.1f} per kill)"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
