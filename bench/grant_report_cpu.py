"""CPU and wall time per grant report inside one process, beside ping: where a report's time goes.

    .venv/bin/python bench/grant_report_cpu.py                    # 2,000 requests per phase, SQLite file
    .venv/bin/python bench/grant_report_cpu.py --n 2000 --database-url postgresql://postgres@127.0.0.1:5432/postgres

``bench/grant_reports.py`` measures rates under gunicorn with a client on the same cores, which moves with
whatever else the machine runs. This one takes the server out of it: the app (production settings, rate
limits off, a fresh SQLite file or a throwaway PostgreSQL database migrated with ``flask db upgrade``)
answers Flask's test client in this process, so ``time.process_time`` per request is the app's own CPU
(Flask, the token, SQLAlchemy, the database driver; SQLite's work too, since it runs in-process) and the
wall time adds what it waits for (the commit's fsync, PostgreSQL's round trips). Users log in through
``POST /api/mp/session`` against the WeChat sandbox (real HTTP on loopback). Phases alternate: ping,
grants, ping, grants ...; then the median time of each SQL statement of a report, timed around the
driver's ``execute``.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.grant_reports import app_environment, database, load, machine  # noqa: E402 - after the path is set
from dashboard.sandbox import SandboxServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per phase (default 2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="ping/grants phase pairs (default 3)")
    parser.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
    parser.add_argument("--database-url", help="a PostgreSQL server (a throwaway database is made on it)")
    args = parser.parse_args()

    print("$ python bench/grant_report_cpu.py " + " ".join(sys.argv[1:]))
    print(f"machine: {machine()}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        SandboxServer() as sandbox,
        database(args.database_url, Path(tmp)) as (url, backend),
    ):
        # The same settings as the gunicorn bench gives its server (production, rate limits off).
        environment = app_environment(url, Path(tmp), sandbox)
        os.environ.clear()
        os.environ.update(environment)
        flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"]
        subprocess.run(flask, cwd=ROOT, check=True, capture_output=True)  # noqa: S603 - our own command
        from dashboard import create_app

        app = create_app()
        client = app.test_client()
        users = requests.get(f"{sandbox.url}/sandbox/api/users", params={"per_page": args.users}, timeout=10)
        tokens = []
        for user in users.json()["users"]:
            code = requests.post(
                f"{sandbox.url}/sandbox/api/users/{user['openid']}/login-code", timeout=10
            ).json()["code"]
            tokens.append(client.post("/api/mp/session", json={"code": code}).get_json()["token"])
        templates = requests.get(f"{sandbox.url}/sandbox/api/templates", timeout=10).json()["templates"]
        one_time = [t["priTmplId"] for t in templates if t["type"] == 2][:3]
        report = {"errMsg": "requestSubscribeMessage:ok", one_time[0]: "accept", one_time[1]: "accept"}
        report[one_time[2]] = "reject"

        def ping(number: int) -> int:
            return client.get("/api/mp/ping").status_code

        def grant(number: int) -> int:
            headers = {
                "Authorization": f"Bearer {tokens[number % len(tokens)]}",
                "Idempotency-Key": uuid.uuid4().hex,
            }
            return client.post("/api/mp/grants", json=report, headers=headers).status_code

        def phase(request, n: int) -> tuple[float, float]:
            wall, cpu = time.perf_counter(), time.process_time()
            for number in range(n):
                status = request(number)
                if status not in (200, 201):
                    raise SystemExit(f"answered {status}")
            return (time.process_time() - cpu) * 1000 / n, (time.perf_counter() - wall) * 1000 / n

        phase(ping, 100), phase(grant, 100)  # warm: imports, statement caches, connections
        print(f"{backend}; {args.users} users; {args.n} requests per phase, in this process")
        figures: dict[str, list[tuple[float, float]]] = {"ping": [], "grants": []}
        for number in range(1, args.rounds + 1):
            for name, request in (("ping", ping), ("grants", grant)):
                before = load()
                cpu, wall = phase(request, args.n)
                figures[name].append((cpu, wall))
                print(
                    f"round {number} {name:<7} {cpu:6.2f} ms CPU {wall:6.2f} ms wall per request   load {before}"
                )
        for name, runs in figures.items():
            cpu = sorted(run[0] for run in runs)
            wall = sorted(run[1] for run in runs)
            print(
                f"{name:<7} ms CPU per request min {cpu[0]:.2f} / median {statistics.median(cpu):.2f} / max "
                f"{cpu[-1]:.2f}; wall min {wall[0]:.2f} / median {statistics.median(wall):.2f} / max {wall[-1]:.2f}"
            )

        times: dict[str, list[float]] = collections.defaultdict(list)
        with app.app_context():
            from dashboard.extensions import db

            engine = db.engine

        @event.listens_for(engine, "before_cursor_execute")
        def started(conn, cursor, statement, parameters, context, executemany):
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def finished(conn, cursor, statement, parameters, context, executemany):
            first_line = " ".join(statement.split())[:70]
            times[first_line].append(time.perf_counter() - conn.info["bench_started"])

        for number in range(min(args.n, 1000)):
            grant(number)
        print("a report's statements (median ms, execute only; SQLite's reads finish in the fetch):")
        for statement, durations in times.items():
            print(f"  {statistics.median(durations) * 1000:6.3f}  {statement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
