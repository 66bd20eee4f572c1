"""Ambassadors list sorted by each key: keyset pages next to OFFSET pages, at 100,000 rows.

Data: the same shop as ``bench/api_list_latency.py`` (100,000 ambassadors, statistics rows for
a fifth of them), plus engagement scores for 60 % of them; then ``VACUUM ANALYZE``.

**ours**: the app's repository query (``AmbassadorRepository.search_keyed``, the SQL behind
``GET /api/v1/ambassadors?sort=...``, measured in this process without HTTP or JSON), 51 rows
(a page of 50 and the look-ahead), for the first page and for the page after 500 pages (from
the keyset cursor of the 25,000th row in that order).

**naive**: the same order in one statement (outer joins to the statistics and scores, missing
values last when descending, then the id) with ``LIMIT 51 OFFSET n``, through the same
connection pool: what a list without keyset cursors does. Each keyset page is checked equal to
its OFFSET page before timing.

Latency = the statement sent to the rows read, one at a time. Prints p50 and p95 per case.

    .venv/bin/python bench/ambassador_sort_latency.py --quick   # about a minute
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_list_latency import seed
from bench.common import (
    DEFAULT_PG_URL,
    Row,
    busy_notes,
    cleanup_on_sigterm,
    databases,
    fmt,
    idle_check,
    libpq,
    machine_lines,
    met,
    percentile,
    ratio,
    report,
    sqlalchemy_url,
)

NAME = "ambassador_sort_latency"
TITLE = "Ambassadors list sorted (keyset vs OFFSET)"
TARGET_P95_MS = 100.0  # as bench/api_list_latency.py: a page of the list under 100 ms

PAGE = 50
DEEP_ROWS = 25_000  # the page after 500 pages of 50
SORTS = ("-created", "name", "-name", "-orders", "revenue", "-revenue", "-engagement")


def seed_scores(engine: sa.Engine, shop_id: int, rng: random.Random) -> None:
    from adapters.db.tables import ambassadors, engagement_scores

    at = datetime.now(UTC)
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(sa.select(ambassadors.c.id))]
        rows = []
        for aid in ids:
            if rng.random() < 0.6:
                score = Decimal(rng.randint(0, 1000)) / 10
                band = "engaged" if score >= 60 else "marginal" if score >= 25 else "not engaged"
                rows.append(
                    {
                        "ambassador_id": aid,
                        "shop_id": shop_id,
                        "score": score,
                        "band": band,
                        "components": {},
                        "computed_at": at,
                    }
                )
        for k in range(0, len(rows), 10_000):
            conn.execute(sa.insert(engagement_scores), rows[k : k + 10_000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE engagement_scores")


def timed(fn: Any, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return sorted(out)


NAIVE_ORDER = {
    "created": ("NULL", "a.id {d}"),
    "name": ("NULL", "a.first_name {d}, a.last_name {d}, a.id {d}"),
    "orders": ("s.attributed_orders", "s.attributed_orders {d} NULLS {n}, a.id {d}"),
    "revenue": ("s.attributed_revenue", "s.attributed_revenue {d} NULLS {n}, a.id {d}"),
    "engagement": ("e.score", "e.score {d} NULLS {n}, a.id {d}"),
}


def naive_sql(sort: str, rows: int, offset: int) -> str:
    """The same order in one statement with OFFSET (what a list without keyset cursors does):
    outer joins, missing values last when descending, first when ascending, then the id."""
    value, order = NAIVE_ORDER[sort.lstrip("-")]
    desc = sort.startswith("-")
    order = order.format(d="DESC" if desc else "ASC", n="LAST" if desc else "FIRST")
    return (
        f"SELECT a.*, {value} AS v FROM ambassadors a"
        " LEFT JOIN ambassador_stats s ON s.ambassador_id = a.id"
        " LEFT JOIN engagement_scores e ON e.ambassador_id = a.id"
        f" WHERE a.shop_id = %(shop)s ORDER BY {order} LIMIT {rows} OFFSET {offset}"
    )


def measure(engine: sa.Engine, shop_id: int, sort: str, samples: int) -> list[Row]:
    """Print the first and the deep page of one sort, ours and naive; their table rows."""
    from adapters.clock import SystemClock
    from adapters.db.program_repositories import SqlAlchemyAmbassadorRepository
    from connector.ports import AmbassadorQuery

    key = sort.lstrip("-")
    with engine.connect() as conn:
        deep = conn.exec_driver_sql(naive_sql(sort, 1, DEEP_ROWS - 1), {"shop": shop_id}).one()
    values: tuple[Any, ...] = {
        "created": (),
        "name": (deep.first_name, deep.last_name),
    }.get(key, (deep.v,))
    after = (values, deep.id)

    def ours(after: Any) -> list[int]:
        with engine.connect() as conn:
            repo = SqlAlchemyAmbassadorRepository(conn, SystemClock().now())
            rows = repo.search_keyed(
                shop_id, AmbassadorQuery(sort=sort, after=after, limit=PAGE + 1)
            )
        return [a.id for a, _ in rows]

    def naive(offset: int) -> list[int]:
        with engine.connect() as conn:
            sql = naive_sql(sort, PAGE + 1, offset)
            return [r.id for r in conn.exec_driver_sql(sql, {"shop": shop_id})]

    # The keyset pages must be the OFFSET pages.
    assert ours(None) == naive(0), sort
    assert ours(after) == naive(DEEP_ROWS), sort
    rows: list[Row] = []
    for label, at, offset in (
        ("first page", None, 0),
        (f"after {DEEP_ROWS // PAGE} pages", after, DEEP_ROWS),
    ):
        o = timed(lambda at=at: ours(at), samples)
        n = timed(lambda offset=offset: naive(offset), samples)
        o95, n95 = percentile(o, 95), percentile(n, 95)
        rows.append((
            f"sort={sort}, {label}: p95 ms",
            fmt(o95),
            fmt(n95),
            ratio(o95, n95),
            f"< {TARGET_P95_MS:.0f} ms",
            met(o95 is not None and o95 < TARGET_P95_MS),
        ))
        print(
            f"sort={sort:<12} {label:<22} {fmt(percentile(o, 50)):>9} "
            f"{fmt(percentile(o, 95)):>9} {fmt(percentile(n, 50)):>10} "
            f"{fmt(percentile(n, 95)):>10}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 samples per case")
    parser.add_argument("--ambassadors", type=int, default=100_000)
    parser.add_argument("--samples", type=int)
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    samples = args.samples or (10 if args.quick else 100)
    plan = "quick" if args.quick else "full"
    rng = random.Random(20261203)
    cleanup_on_sigterm()
    busy = idle_check()
    started = time.monotonic()

    from cryptography.fernet import Fernet

    from adapters.db.engine import make_engine

    rows: list[Row] = []
    with databases(libpq(args.pg_url)) as make_db:
        db_url = make_db("sort")
        key = Fernet.generate_key().decode()
        print(f"seeding {args.ambassadors:,} ambassadors ...", flush=True)
        seeded = seed(db_url, key, args.ambassadors, rng)
        engine = make_engine(sqlalchemy_url(db_url))
        seed_scores(engine, seeded.shop_id, rng)
        header = [
            *machine_lines(db_url, None, plan, busy),
            f"data: {args.ambassadors:,} ambassadors of one shop, statistics for a fifth, "
            "engagement scores for 60 %",
            f"ours: the repository's keyset query (no HTTP), {PAGE} rows + 1 per page; naive: "
            f"one statement with outer joins and OFFSET; {samples} samples per case",
        ]
        print("\n".join(header), flush=True)
        print(f"{'case':<36} {'ours p50':>9} {'ours p95':>9} {'naive p50':>10} {'naive p95':>10}")
        for sort in SORTS:
            rows += measure(engine, seeded.shop_id, sort, samples)
        engine.dispose()
    notes = [
        "ratio = ours ÷ naive (lower is better). Each keyset page was checked equal to its "
        "OFFSET page before timing.",
        *busy_notes(busy),
    ]
    report(NAME, TITLE, plan, header, rows, notes, started)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
