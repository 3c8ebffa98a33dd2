"""Starting a campaign at scale: the snapshot of a 500,000-recipient segment, timed, with the peak RSS.

    .venv/bin/python bench/campaign_snapshot.py                          # SQLite, in a temporary file
    .venv/bin/python bench/campaign_snapshot.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench
    .venv/bin/python bench/campaign_snapshot.py --snapshot 100000 --users 200000 --balances 600000

What runs:
1. The database of ``bench/segments.py`` (its seeding functions, imported): ``--users`` users and
   ``--balances`` grant balances, bulk-loaded into a fresh database (a PostgreSQL one given here is
   dropped and recreated: the bench owns it).
2. A registered one-time template ``TMPL_bench_snap`` with a live balance for users 1..``--snapshot``
   (2 credits for the first fifth, 1 for the rest), so the segment ``{"grant": {"template_id":
   TMPL_bench_snap, "min_credits": 1}}`` holds N users and ``min_credits: 2`` holds N/5. Three users in
   four of those get a nickname; the fourth has none and takes the fallback.
3. For N/5 then N, ``--runs`` rounds, each interleaving three starts on an emptied ``delivery`` table
   (``TRUNCATE`` before each, so every start writes into the same table): (bare) the floor, one plain
   ``INSERT … SELECT`` of the same recipients with fixed values and the page as it is (no token, no
   campaign, one write of every row and its indexes), then ``dashboard.campaigns.services.launch``
   (→ ``start`` → ``_snapshot``, and ``_snapshot_filled`` on PostgreSQL or ``_fill`` on SQLite for per-user
   values) of a draft campaign with a page (every row gets its open
   token) and (a) fixed values, (b) a per-user value (``{{user.nickname}}`` with a fallback).
   Wall time and the process's peak RSS (``ru_maxrss``) before and after each start are printed, then
   min / median / max per kind; the growth at N against the growth at N/5 shows whether memory follows
   the recipient count.

``--no-seed`` reuses a database this script seeded before (same URL), to repeat the starts without the
minutes of loading.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from segments import make_app, seed_database  # noqa: E402 (bench/ on the path first)

TEMPLATE_ID = "TMPL_bench_snap"
CONTENT = "活动：{{thing1.DATA}}\n收件人：{{thing2.DATA}}"
PAGE = "pages/promo/index?from=campaign"
FIXED = {"thing1": {"value": "春季促销"}, "thing2": {"value": "尊敬的会员"}}
VARIABLE = {
    "thing1": {"value": "春季促销"},
    "thing2": {"value": "{{user.nickname}}", "fallback": "尊敬的会员"},
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mib() -> float:
    """The resident set now (Linux): the peak is a high-water mark the seeding may already have set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare(db, n: int) -> tuple[int, int]:
    """The template, its balances for users 1..n and two segments (n and n/5 users); returns their ids."""
    import sqlalchemy as sa

    from dashboard.catalog.services import new_template
    from dashboard.models.catalog import TemplateKind, TemplateSource
    from dashboard.models.segment import Segment

    new_template(
        template_id=TEMPLATE_ID,
        title="活动通知",
        kind=TemplateKind.one_time,
        content=CONTENT,
        source=TemplateSource.manual,
    )
    db.session.execute(
        sa.text(
            "INSERT INTO grant_balance (user_id, template_id, kind, template_known, credits, active,"
            " last_status, granted_at, updated_at)"
            " SELECT id, :template, 'one_time', :known, CASE WHEN id <= :fifth THEN 2 ELSE 1 END, :off,"
            " 'accept', created_at, created_at FROM wechat_user WHERE id <= :n"
        ),
        {"template": TEMPLATE_ID, "known": True, "off": False, "fifth": n // 5, "n": n},
    )
    db.session.execute(
        sa.text("UPDATE wechat_user SET nickname = '用户' || id WHERE id <= :n AND id % 4 <> 0"), {"n": n}
    )
    segments = [
        Segment(name=name, filter={"grant": {"template_id": TEMPLATE_ID, "min_credits": credits}})
        for name, credits in (("snapshot N", 1), ("snapshot N/5", 2))
    ]
    db.session.add_all(segments)
    db.session.commit()
    return segments[0].id, segments[1].id


def prepared_segments(db) -> tuple[int, int]:
    """The two segments ``prepare`` made in an earlier run (``--no-seed``)."""
    import sqlalchemy as sa

    from dashboard.models.segment import Segment

    ids = dict(db.session.execute(sa.select(Segment.name, Segment.id)).all())
    return ids["snapshot N"], ids["snapshot N/5"]


def empty_deliveries() -> None:
    import sqlalchemy as sa

    from dashboard.extensions import db

    db.session.execute(
        sa.text("DELETE FROM delivery" if db.engine.dialect.name == "sqlite" else "TRUNCATE delivery CASCADE")
    )
    db.session.commit()


def bare_start(segment_id: int, label: str) -> tuple[float, int, float, float]:
    """The floor: the same recipients written once, fixed values, no token, no campaign, one commit."""
    import sqlalchemy as sa

    from dashboard.audience.segments import segment_user_ids
    from dashboard.extensions import db
    from dashboard.models import Delivery, WechatUser
    from dashboard.models.segment import Segment
    from dashboard.models.types import utcnow

    segment = db.session.get(Segment, segment_id)
    user = WechatUser.__table__.c
    t = Delivery.__table__
    now = utcnow()
    columns = {
        "source": sa.literal("campaign", sa.String),
        "user_id": user.id,
        "openid": user.openid,
        "template_id": sa.literal(TEMPLATE_ID, sa.String),
        "data": sa.literal({k: v["value"] for k, v in FIXED.items()}, t.c.data.type),
        "page": sa.literal(PAGE, sa.String),
        "miniprogram_state": sa.literal("formal", sa.String),
        "lang": sa.literal("zh_CN", sa.String),
        "state": sa.literal("pending", sa.String),
        "attempts": sa.literal(0, sa.Integer),
        "reason": sa.literal("", sa.String),
        "errmsg": sa.literal("", sa.String),
        "created_at": sa.literal(now, t.c.created_at.type),
        "updated_at": sa.literal(now, t.c.updated_at.type),
    }
    before = peak_rss_mib()
    started = time.perf_counter()
    select = sa.select(*columns.values()).where(user.id.in_(segment_user_ids(segment.filter, now)))
    db.session.execute(sa.insert(t).from_select(list(columns), select))
    recipients = db.session.scalar(sa.select(sa.func.count()).select_from(t))
    db.session.commit()
    seconds = time.perf_counter() - started
    after = peak_rss_mib()
    db.session.remove()
    return seconds, recipients, before, after


def one_start(segment_id: int, data: dict, label: str) -> tuple[float, int, float, float]:
    from dashboard.campaigns import services
    from dashboard.extensions import db

    campaign = services.create_campaign(
        {"name": label, "template_id": TEMPLATE_ID, "segment_id": segment_id, "data": data, "page": PAGE}
    )
    campaign_id = campaign.id
    db.session.expire_all()
    before = peak_rss_mib()
    started = time.perf_counter()
    services.launch(campaign_id)
    seconds = time.perf_counter() - started
    after = peak_rss_mib()
    recipients = services._get(campaign_id).recipients
    db.session.remove()
    return seconds, recipients, before, after


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snapshot", type=int, default=500_000, help="recipients of the large campaign")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--balances", type=int, default=3_000_000)
    parser.add_argument(
        "--runs", type=int, default=1, help="rounds per size (bare, fixed, per-user, interleaved)"
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument("--no-seed", action="store_true", help="reuse a database seeded by this script")
    args = parser.parse_args()
    if args.no_seed and not args.database_url:
        parser.error("--no-seed needs --database-url (the SQLite file is temporary)")
    if not 5 <= args.snapshot <= args.users:
        parser.error("--snapshot must be between 5 and --users")

    from dashboard.extensions import db

    print("$", " ".join([Path(sys.executable).name, *sys.argv]))
    with tempfile.TemporaryDirectory() as folder:
        instance = Path(folder)
        url = args.database_url or f"sqlite:///{instance / 'snapshot.db'}"
        app = make_app(url, instance)
        with app.app_context():
            started = time.perf_counter()
            if args.no_seed:
                full, fifth = prepared_segments(db)
            else:
                seed_database(db, url, args.users, args.balances)
                full, fifth = prepare(db, args.snapshot)
            how = "reused (--no-seed)" if args.no_seed else f"seeded in {time.perf_counter() - started:.1f} s"
            print(
                f"{args.users:,} users, {args.balances:,} balances and a {args.snapshot:,}-user segment "
                f"on {db.engine.dialect.name}, {how}; "
                f"peak RSS {peak_rss_mib():.0f} MiB, RSS now {current_rss_mib():.0f} MiB"
            )
            results: dict[tuple[str, int], list[tuple[float, int, float, float]]] = {}
            for segment_id, size in ((fifth, args.snapshot // 5), (full, args.snapshot)):
                for run in range(args.runs):
                    for kind, data in (("bare", None), ("fixed", FIXED), ("per-user", VARIABLE)):
                        empty_deliveries()
                        if data is None:
                            result = bare_start(segment_id, f"bare {size} #{run}")
                        else:
                            result = one_start(segment_id, data, f"{kind} {size} #{run}")
                        results.setdefault((kind, size), []).append(result)
                        seconds, recipients, before, after = result
                        print(
                            f"start {kind:8} {recipients:>9,} recipients: {seconds:6.1f} s, "
                            f"peak RSS {before:.0f} -> {after:.0f} MiB (+{after - before:.0f}), "
                            f"RSS now {current_rss_mib():.0f} MiB"
                        )
            print("summary (wall time of start; growth of the peak RSS during it):")
            for (kind, size), rows in results.items():
                times = [row[0] for row in rows]
                growth = max(row[3] - row[2] for row in rows)
                spread = (
                    f"min {min(times):.1f} s, median {statistics.median(times):.1f} s, max {max(times):.1f} s"
                    if len(times) > 1
                    else f"{times[0]:.1f} s (one run)"
                )
                print(f"  {kind:8} {size:>9,}: {spread}; peak RSS growth at most +{growth:.0f} MiB")
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
