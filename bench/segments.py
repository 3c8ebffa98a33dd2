"""Segment counts at scale: a grant + tag + attribute segment over 1,000,000 users and 3,000,000 balances.

    .venv/bin/python bench/segments.py                                   # SQLite, in a temporary file
    .venv/bin/python bench/segments.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python bench/segments.py --users 100000 --balances 300000  # a quicker run

What runs:
1. A fresh database (SQLite in a temporary folder, or the PostgreSQL one given: its schema is dropped and
   recreated, the bench owns it), migrated to head.
2. ``--users`` users (tags from a small set, a city, a level and a birthday as attributes, a last login) and
   ``--balances`` grant balances spread over 20 templates (16 one-time with 0 to 3 credits, 4 long-term),
   written with the database's bulk path (executemany in one transaction on SQLite, COPY on PostgreSQL),
   then ANALYZE (VACUUM ANALYZE on PostgreSQL, as autovacuum would after a bulk load).
3. The segment ``{"all": [grant T0, tag vip, city = 上海]}`` counted with ``dashboard.audience.segments``
   (the same SQL the pages and the API run), ``--runs`` times after one warm-up, each run interleaved with
   a bare baseline on the same connection: ``SELECT count(*)`` of T0's live balances alone (the grant
   condition read from its index, the floor of any grant segment). Then ``reach`` for T0.
   Min, median and max wall times are printed with the command line.

``--against-jsonb`` (PostgreSQL) adds to the interleaved runs the same count written as before the segment
index (JSONB containment answered by GIN indexes), for a before/after in one run.

``--no-seed`` reuses a database this script seeded before (same URL, schema at head), to repeat the
timings without the minutes of loading.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEMPLATES = [f"TMPL_bench_{i:02d}" for i in range(20)]
LONG_TERM_FROM = 16  # templates 16..19 are long-term
TAG_SETS = [[], ["vip"], ["new"], ["vip", "new"], ["old"], ["vip", "北京"], [], ["new", "old"]]
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "南京", "武汉", "西安", "重庆"]
SEGMENT = {
    "all": [
        {"grant": {"template_id": TEMPLATES[0], "min_credits": 1}},
        {"tag": "vip"},
        {"attribute": {"key": "city", "op": "eq", "value": "上海"}},
    ]
}
CHUNK = 20_000
# SEGMENT as migration 0017 compiled it on PostgreSQL, before the segment index (``--against-jsonb``).
JSONB_COUNT = f"""
SELECT count(*) FROM wechat_user
WHERE id IN (SELECT user_id FROM grant_balance WHERE template_id = '{TEMPLATES[0]}'
             AND ((kind = 'long_term' AND active) OR (kind <> 'long_term' AND credits >= 1)))
  AND tags @> '["vip"]'
  AND attributes @> '{{"city": "上海"}}' AND coalesce(attributes ->> 'city' = '上海', false)
"""  # noqa: S608 - constants only


def make_app(database_url: str, instance: Path):
    from dashboard import create_app

    return create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "INSTANCE_PATH": str(instance),
            "AUTO_MIGRATE": False,
        }
    )


def user_rows(n: int, now: datetime):
    rng = random.Random(11)
    for i in range(n):
        yield (
            f"obench{i:09d}",
            f"ubench{i:09d}" if i % 3 == 0 else None,
            "",
            json.dumps(TAG_SETS[rng.randrange(len(TAG_SETS))], ensure_ascii=False),
            json.dumps(
                {
                    "city": CITIES[rng.randrange(len(CITIES))],
                    "level": str(rng.randrange(1, 6)),
                    "birthday": f"{rng.randrange(1960, 2010)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                },
                ensure_ascii=False,
            ),
            now,
            now - timedelta(days=rng.randrange(0, 365)),
            rng.random() > 0.1,
        )


def balance_rows(users: int, balances: int, now: datetime):
    rng = random.Random(12)
    per_user = max(1, balances // users)
    written = 0
    for user_id in range(1, users + 1):
        for k in range(per_user):
            if written == balances:
                return
            t = (user_id * 7 + k * 3) % len(TEMPLATES)
            long_term = t >= LONG_TERM_FROM
            credits = 0 if long_term else rng.randrange(0, 4)
            yield (
                user_id,
                TEMPLATES[t],
                "long_term" if long_term else "one_time",
                True,
                credits,
                long_term and rng.random() > 0.3,
                "accept",
                now,
                now,
            )
            written += 1


USER_COLUMNS = (
    "openid",
    "unionid",
    "nickname",
    "tags",
    "attributes",
    "created_at",
    "last_login_at",
    "main_switch",
)
BALANCE_COLUMNS = (
    "user_id",
    "template_id",
    "kind",
    "template_known",
    "credits",
    "active",
    "last_status",
    "granted_at",
    "updated_at",
)


def _chunks(rows):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_sqlite(path: str, users: int, balances: int) -> None:
    import sqlite3

    now = datetime.now(UTC)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    iso = now.isoformat(sep=" ")

    def users_iso():
        for row in user_rows(users, now):
            yield (*row[:5], iso, row[6].isoformat(sep=" "), row[7])

    def balances_iso():
        for row in balance_rows(users, balances, now):
            yield (*row[:7], iso, iso)

    with connection:
        marks = ", ".join("?" * len(USER_COLUMNS))
        for batch in _chunks(users_iso()):
            connection.executemany(
                f"INSERT INTO wechat_user ({', '.join(USER_COLUMNS)}) VALUES ({marks})",  # noqa: S608 (constants)
                batch,
            )
        marks = ", ".join("?" * len(BALANCE_COLUMNS))
        for batch in _chunks(balances_iso()):
            connection.executemany(
                f"INSERT INTO grant_balance ({', '.join(BALANCE_COLUMNS)}) VALUES ({marks})",  # noqa: S608 (constants)
                batch,
            )
    connection.execute("ANALYZE")
    connection.close()


def seed_postgres(engine, users: int, balances: int) -> None:
    now = datetime.now(UTC)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY wechat_user ({', '.join(USER_COLUMNS)}) FROM STDIN") as copy:
            for row in user_rows(users, now):
                copy.write_row(row)
        with cursor.copy(f"COPY grant_balance ({', '.join(BALANCE_COLUMNS)}) FROM STDIN") as copy:
            for row in balance_rows(users, balances, now):
                copy.write_row(row)
        raw.commit()
        # VACUUM as autovacuum would after a bulk load: index-only scans need the visibility map.
        raw.driver_connection.autocommit = True
        # The segment index (user_tag, user_attribute_value) was written by wechat_user's triggers.
        for table in ("wechat_user", "grant_balance", "user_tag", "user_attribute_value"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    finally:
        raw.close()


def timed(function, runs: int) -> tuple[list[float], object]:
    function()  # warm-up: caches, plan
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
    return times, result


def figures(times: list[float]) -> str:
    return f"min {min(times):.0f} ms, median {statistics.median(times):.0f} ms, max {max(times):.0f} ms"


def seed_database(db, url: str, users: int, balances: int) -> None:
    """A fresh schema at the migrations' head, then the seeded users and balances (inside an app context)."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    if not url.startswith("sqlite"):
        db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.session.commit()
    upgrade(revision="heads")
    if url.startswith("sqlite"):
        db.engine.dispose()
        seed_sqlite(url.removeprefix("sqlite:///"), users, balances)
    else:
        seed_postgres(db.engine, users, balances)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--balances", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--no-seed", action="store_true", help="reuse a database seeded by this script")
    parser.add_argument(
        "--against-jsonb",
        action="store_true",
        help="PostgreSQL: also time, interleaved, the same count as migration 0017 wrote it (JSONB containment"
        " answered by GIN indexes, created for the run and dropped after) instead of the segment index",
    )
    args = parser.parse_args()
    if args.no_seed and not args.database_url:
        parser.error("--no-seed needs --database-url (the SQLite file is temporary)")

    import sqlalchemy as sa

    from dashboard.audience.segments import count_users, live_grant_condition, reach, validate_filter
    from dashboard.extensions import db
    from dashboard.models.grants import GrantBalance

    print("$", " ".join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        url = args.database_url or f"sqlite:///{instance / 'segments.db'}"
        app = make_app(url, instance)
        with app.app_context():
            started = time.perf_counter()
            if not args.no_seed:
                seed_database(db, url, args.users, args.balances)
                print(
                    f"seeded {args.users:,} users and {args.balances:,} balances on "
                    f"{db.engine.dialect.name} in {time.perf_counter() - started:.1f} s"
                )
            doc = validate_filter(SEGMENT)
            now = datetime.now(UTC)

            def count():
                value = count_users(doc, now)
                db.session.rollback()
                return value

            def reach_t0():
                value = reach(doc, TEMPLATES[0], now)
                db.session.rollback()
                return value

            def bare():
                value = db.session.scalar(
                    sa.select(sa.func.count())
                    .select_from(GrantBalance)
                    .where(live_grant_condition(TEMPLATES[0], 1))
                )
                db.session.rollback()
                return value

            jsonb = args.against_jsonb and db.engine.dialect.name == "postgresql"
            if jsonb:
                for column in ("tags", "attributes"):
                    db.session.execute(
                        sa.text(
                            f"CREATE INDEX IF NOT EXISTS bench_gin_{column} ON wechat_user"
                            f" USING gin ({column} jsonb_path_ops)"
                        )
                    )
                db.session.execute(sa.text("ANALYZE wechat_user"))
                db.session.commit()

            def jsonb_count():
                value = db.session.scalar(sa.text(JSONB_COUNT))
                db.session.rollback()
                return value

            phases = [("bare", bare, []), ("segment", count, [])]
            if jsonb:
                phases.append(("jsonb", jsonb_count, []))
            for _name, function, _times in phases:
                function()  # warm-up: caches, plans
            print("load average before the runs: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
            results: dict[str, object] = {}
            for _ in range(args.runs):
                for name, function, into in phases:
                    start = time.perf_counter()
                    results[name] = function()
                    into.append((time.perf_counter() - start) * 1000)
            timings = {name: into for name, _function, into in phases}
            print(
                f"bare: live balances of {TEMPLATES[0]} ({results['bare']:,}), {args.runs} runs:"
                f" {figures(timings['bare'])}"
            )
            print(
                f"segment count ({results['segment']:,} users), {args.runs} runs: {figures(timings['segment'])}"
            )
            if jsonb:
                print(
                    f"the same count on JSONB + GIN ({results['jsonb']:,} users), {args.runs} runs:"
                    f" {figures(timings['jsonb'])}"
                )
                for column in ("tags", "attributes"):
                    db.session.execute(sa.text(f"DROP INDEX bench_gin_{column}"))
                db.session.commit()
            times, result = timed(reach_t0, max(3, args.runs // 2))
            print(f"reach for {TEMPLATES[0]} (reachable {result.reachable:,}): {figures(times)}")
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
