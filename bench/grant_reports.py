"""Grant reports per second through the real app under gunicorn, beside a trivial JSON endpoint.

    .venv/bin/python bench/grant_reports.py                      # 10 s per phase, at most 20,000 requests
    .venv/bin/python bench/grant_reports.py --seconds 5 --rounds 3 --markdown docs/benchmarks.md
    .venv/bin/python bench/grant_reports.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

What runs, all on loopback: the WeChat sandbox (in this process, for wx.login codes and code2Session),
Tongzhi under gunicorn (``--workers`` sync workers, default 2) on a fresh SQLite file (or, with
``--database-url``, a throwaway database created on that PostgreSQL server and dropped at the end) migrated
with ``flask db upgrade heads``, production settings, rate limits off. N simulated users log in through
``POST /api/mp/session``; then client threads send, for a bounded time and count each:

1. ``GET /api/mp/ping`` — the same app, middleware and JSON error handling, no database;
2. ``POST /api/mp/grants`` — a Bearer token, a forwarded ``wx.requestSubscribeMessage`` success object
   naming three templates (two accepts, one reject), a fresh Idempotency-Key: token check, the
   catalog and the balances read, a GrantReport row, one upsert of the balances, the ledger events,
   one commit, the balances back (6 SQL statements; tests/grants/test_report_statements.py).

With ``--rounds N`` the two phases alternate N times (ping, grants, ping, grants, ...), so a change in
the machine's load falls on both. Before each phase it prints the machine's load average. It prints
requests per second, latency percentiles, error counts and the ratio of the grant reports' rate to
ping's (per round, then min/median/max), and with ``--markdown`` writes them (with this command and the
machine) into that file between this benchmark's markers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.sandbox import SandboxServer  # noqa: E402 - after the path is set

MACHINE = ""
BEGIN = "<!-- bench/grant_reports.py:begin -->"
END = "<!-- bench/grant_reports.py:end -->"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_environment(database_url: str, instance: Path, sandbox: SandboxServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "TONGZHI_", "WECHAT_", "MP_"))}
    env.update(
        TONGZHI_ENV="production",
        TONGZHI_INSTANCE_PATH=str(instance),
        SECRET_KEY=secrets.token_hex(32),
        DATABASE_URL=database_url,
        WECHAT_APPID=sandbox.state.config["APPID"],
        WECHAT_SECRET=sandbox.state.config["SECRET"],
        WECHAT_API_BASE=sandbox.url,
        MP_RATE_LIMIT_PER_IP="0",
        MP_RATE_LIMIT_PER_TOKEN="0",  # noqa: S106 - a number of requests, not a password
        SESSION_COOKIE_SECURE="false",
        AUTO_MIGRATE="false",
    )
    env.pop("REDIS_URL", None)
    return env


def wait_ready(base: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited at start")
        try:
            if requests.get(f"{base}/api/mp/ping", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer in time")


def hammer(make_request, seconds: float, max_requests: int, concurrency: int) -> dict:
    """Send requests from ``concurrency`` threads until ``seconds`` pass or ``max_requests`` are sent."""
    lock = threading.Lock()
    sent = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        nonlocal sent
        http = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                if sent >= max_requests:
                    return
                sent += 1
                number = sent
            started = time.perf_counter()
            try:
                status = make_request(http, index, number)
            except requests.RequestException:
                status = 0
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    latencies.sort()
    ok = statuses.get(200, 0)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0

    return {
        "requests": len(latencies),
        "ok": ok,
        "errors": len(latencies) - ok,
        "statuses": statuses,
        "seconds": wall,
        "per_second": ok / wall if wall else 0.0,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = f", load average {os.getloadavg()[0]:.1f} at the start" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}{load}"


def load() -> str:
    """The machine's load averages (1, 5, 15 min): other processes share the cores with the bench."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


@contextlib.contextmanager
def database(url: str | None, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh database URL for the app and its description: a SQLite file, or a throwaway PostgreSQL
    database on the server ``url`` names (created here, dropped at the end)."""
    if not url:
        yield f"sqlite:///{tmp_path / 'bench.db'}", "SQLite (WAL) file"
        return
    import sqlalchemy as sa

    server = sa.engine.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"tongzhi_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False), "PostgreSQL"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def summarise(name: str, runs: list[dict]) -> str:
    per_second = sorted(r["per_second"] for r in runs)
    p99 = sorted(r["p99_ms"] for r in runs)
    return (
        f"{name:<22} req/s min {per_second[0]:.0f} / median {statistics.median(per_second):.0f} / max {per_second[-1]:.0f};"
        f" p99 ms min {p99[0]:.1f} / median {statistics.median(p99):.1f} / max {p99[-1]:.1f};"
        f" errors {sum(r['errors'] for r in runs)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase (default 10)")
    parser.add_argument("--max-requests", type=int, default=20_000, help="cap per phase (default 20000)")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--users", type=int, default=50, help="simulated users logged in (default 50)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="ping/grants phase pairs, alternated (default 1)"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (postgresql://user@host:port/db): run on a throwaway database there",
    )
    parser.add_argument("--markdown", type=Path, help="write the figures into this file (docs/benchmarks.md)")
    args = parser.parse_args()
    command = "python bench/grant_reports.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    global MACHINE
    MACHINE = machine()

    with (
        contextlib.ExitStack() as stack,
        tempfile.TemporaryDirectory(prefix="tongzhi-bench-") as tmp,
        SandboxServer(
            {"APPID": "wxbench00000000000", "SECRET": "bench-secret", "USERS": args.users, "CODE_TTL": 600}
        ) as sandbox,
    ):
        tmp_path = Path(tmp)
        database_url, backend = stack.enter_context(database(args.database_url, tmp_path))
        env = app_environment(database_url, tmp_path, sandbox)
        bin_dir = Path(sys.executable).parent
        subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [
                str(bin_dir / "gunicorn"),
                "--workers",
                str(args.workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            wait_ready(base, gunicorn)
            openids = [
                u["openid"]
                for u in requests.get(
                    f"{sandbox.url}/sandbox/api/users", params={"per_page": args.users}, timeout=10
                ).json()["users"]
            ]
            templates = [
                t["priTmplId"]
                for t in requests.get(f"{sandbox.url}/sandbox/api/templates", timeout=10).json()["templates"]
                if t["type"] == 2
            ][:3]
            tokens = []
            for openid in openids:
                code = requests.post(
                    f"{sandbox.url}/sandbox/api/users/{openid}/login-code", timeout=10
                ).json()["code"]
                reply = requests.post(f"{base}/api/mp/session", json={"code": code}, timeout=10)
                reply.raise_for_status()
                tokens.append(reply.json()["token"])
            report = {
                "errMsg": "requestSubscribeMessage:ok",
                templates[0]: "accept",
                templates[1]: "accept",
                templates[2]: "reject",
            }

            def ping(http, index, number):
                return http.get(f"{base}/api/mp/ping", timeout=10).status_code

            def grant(http, index, number):
                headers = {
                    "Authorization": f"Bearer {tokens[number % len(tokens)]}",
                    "Idempotency-Key": uuid.uuid4().hex,
                }
                return http.post(
                    f"{base}/api/mp/grants", json=report, headers=headers, timeout=10
                ).status_code

            # A short warm-up so both phases start with imported modules and open connections.
            hammer(ping, 1.0, 200, args.concurrency)
            rounds: list[dict[str, dict]] = []
            for number in range(1, args.rounds + 1):
                results = {}
                for name, request in (("GET /api/mp/ping", ping), ("POST /api/mp/grants", grant)):
                    print(f"round {number}, {name}: load average {load()}", flush=True)
                    results[name] = hammer(request, args.seconds, args.max_requests, args.concurrency)
                    results[name]["load"] = load()
                rounds.append(results)
        finally:
            gunicorn.terminate()
            gunicorn.wait(10)

    header = (
        f"{'endpoint':<22} {'req/s':>8} {'ok':>7} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    lines = []
    ratios = []
    for number, results in enumerate(rounds, 1):
        lines.append(f"round {number}")
        lines.append(header + f" {'load after':>16}")
        for name, r in results.items():
            lines.append(
                f"{name:<22} {r['per_second']:>8.0f} {r['ok']:>7} {r['errors']:>7} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['load']:>16}"
            )
        ratio = results["POST /api/mp/grants"]["per_second"] / max(
            results["GET /api/mp/ping"]["per_second"], 1e-9
        )
        ratios.append(ratio)
        lines.append(f"grant reports / ping: {ratio:.0%}")
        lines.append("")
    if len(rounds) > 1:
        for name in rounds[0]:
            lines.append(summarise(name, [results[name] for results in rounds]))
        ordered = sorted(ratios)
        lines.append(
            f"grant reports / ping: min {ordered[0]:.0%} / median {statistics.median(ordered):.0%} / max {ordered[-1]:.0%}"
        )
    summary = "\n".join(lines).rstrip()
    print(f"$ {command}")
    print(f"machine: {MACHINE}")
    print(
        f"gunicorn: {args.workers} sync workers; {backend}; {args.concurrency} client threads; {args.users} users"
    )
    print(summary)
    if args.markdown:
        write_markdown(args.markdown, command, args, summary, backend)
    return 0


def write_markdown(path: Path, command: str, args, summary: str, backend: str) -> None:
    section = f"""{BEGIN}
## Grant reports through the mini-program API (`bench/grant_reports.py`)

**What**: `POST /api/mp/grants` (a Bearer token, a forwarded `wx.requestSubscribeMessage` success object
with two accepts and a reject, a fresh `Idempotency-Key`: the catalog and the user's balances with the pairing
candidates read before the write lock, then the report row inserted (nothing on a used key), one upsert of
the three balances returning them, the three ledger events in one statement, one commit, the balances back) against `GET /api/mp/ping` of the same app, through gunicorn with
{args.workers} sync workers on {backend}, production settings, rate limits off. Users log in first
through `POST /api/mp/session` against the WeChat sandbox. Client: {args.concurrency} threads of `requests`
on the same machine, each phase bounded to {args.seconds:g} s and {args.max_requests} requests; loopback only.

**Command**: `{command}`

**Machine**: {MACHINE}

```
{summary}
```

The client threads share the machine's two cores with gunicorn, so both figures include the client's own
cost; the comparison between the two lines is the point. Writes on SQLite are serialised (one writer);
PostgreSQL lets the report transactions of different users run side by side.
{END}"""
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nOne section per benchmark: what it measures, the exact command, the machine, and the figures it printed.\n"
    )
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
