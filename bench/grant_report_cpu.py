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
driver's ``execute``. On PostgreSQL, the CPU its server processes spent per report (read from ``/proc``).

    .venv/bin/python bench/grant_report_cpu.py --n 200 --rounds 1 --profile 3000 --callees 'plan_report'

profiles reports with cProfile on CPU time (not the waits for the server) and prints each package's own
time per request, ping's beside the report's.
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


def postgres_cpu() -> float:
    """Seconds of CPU (user + system) used so far by every live process named ``postgres``: a local
    server's backends, which do a report's SQL work outside this process."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        name, _, rest = text.partition(" (")[2].partition(") ")
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per phase (default 2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="ping/grants phase pairs (default 3)")
    parser.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
    parser.add_argument("--database-url", help="a PostgreSQL server (a throwaway database is made on it)")
    parser.add_argument("--profile", type=int, default=0, help="then profile this many reports (cProfile)")
    parser.add_argument("--callees", help="with --profile: also what these functions call (a pstats regex)")
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

        server_cpu: dict[str, list[float]] = collections.defaultdict(list)

        def phase(request, n: int) -> tuple[float, float]:
            wall, cpu, server = time.perf_counter(), time.process_time(), postgres_cpu()
            for number in range(n):
                status = request(number)
                if status not in (200, 201):
                    raise SystemExit(f"answered {status}")
            server_cpu[request.__name__].append((postgres_cpu() - server) * 1000 / n)
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

        if backend.startswith("PostgreSQL"):
            spent = sorted(server_cpu["grant"][1:])  # without the warm-up phase
            print(
                "PostgreSQL's server processes, ms CPU per report (every process named postgres on this "
                f"machine): min {spent[0]:.2f} / median {statistics.median(spent):.2f} / max {spent[-1]:.2f}"
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
        if args.profile:
            import cProfile
            import pstats

            def by_package(request) -> tuple[pstats.Stats, collections.Counter]:
                profiler = cProfile.Profile(time.process_time)  # CPU only: not the waits for the server
                profiler.runcall(lambda: [request(number) for number in range(args.profile)])
                stats = pstats.Stats(profiler)
                own_time: collections.Counter = collections.Counter()
                for (filename, _, function), (_, _, own, _, _) in stats.stats.items():
                    parts = filename.split("site-packages/")
                    name = parts[1].split("/")[0] if len(parts) > 1 else filename.split("/")[-1]
                    if name == "~":
                        name = function
                    own_time["dashboard" if "/dashboard/" in filename else name] += own
                return stats, own_time

            _, ping_time = by_package(ping)
            stats, grant_time = by_package(grant)
            print(
                "own CPU time by package, ms per request under cProfile (which inflates Python code): ping, report"
            )
            for name, own in grant_time.most_common(25):
                print(
                    f"  {ping_time[name] * 1000 / args.profile:6.3f} {own * 1000 / args.profile:6.3f}  {name}"
                )
            stats.strip_dirs()
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(60)
            if args.callees:
                stats.print_callees(args.callees)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
