"""Code issuance: codes for 10,000 ambassadors against the Shopify emulator on the Standard plan.

The issue: "Issue codes for 10,000 ambassadors against the emulator set to Shopify's Standard plan
(100 points/s): wall time and GraphQL calls next to the floor that plan's restore rate allows, in
the same run, and next to the naive one-discountCodeBasicCreate-per-ambassador approach. Target:
≤ 1.2 × the floor, ≤ 1 % throttled calls."

**ours**: ``connector.services.codes.sync_codes`` for a shop whose N active ambassadors each hold
a reserved code (``code_state = pending``): one ``discountCodeBasicCreate`` makes the shared
discount with the first code, then ``discountRedeemCodeBulkAdd`` adds the others 249-250 at a
time, each bulk creation polled (``discountRedeemCodeBulkCreation``) until done and its codes'
results read; every code is then marked active in the database (one transaction per code).

**naive**: one ``discountCodeBasicCreate`` per ambassador (a discount of its own holding the
ambassador's code), through the same paced GraphQL client, each recorded in the database the
same way. Its cost is linear in N once the initial bucket is spent, so it runs on a smaller N
(300) and is extrapolated: ``T(N) = T(n) + (N − n) ÷ r``, with ``r`` the ambassadors per second
it sustained after its initial bucket was spent (the calls' own timestamps in the emulator).
Calls and points are extrapolated per ambassador.

**The floor** is the least time Shopify's leaky bucket allows for the minimal calls of our
design, however fast everything else is. Rules (``adapters/shopify/emulator/cost.py``): a call
runs only when the bucket holds its *requested* cost; afterwards only its *actual* cost stays
charged; the bucket starts full (B = 2,000 points on the Standard plan) and refills at
r = 100 points/s. The minimal calls are: one ``discountCodeBasicCreate`` (10 points), and per
chunk of 250 codes one ``discountRedeemCodeBulkAdd`` (10), one "done?" poll when the app has a
cheap one (1), and one read of the finished bulk creation (requested ~753 for
``codes(first: 250)``, actual ~2 per code returned: ~503), with the costs computed by the
emulator's own cost calculator on the app's own documents (``adapters/shopify/discounts.py``).
Calls back-to-back, no latency, no bulk delay::

    t = 0, level = B
    for each call (requested q, actual a):  if level < q: t += (q − level) / r; level = q
                                            level −= a
    floor = t  ≈ (Σ a − B + (q_last − a_last)) / r

i.e. the total points charged by the minimal calls, minus the initial bucket, over the restore
rate (the last call must find its whole requested cost available). Summing *requested* costs
instead would overstate the floor (Shopify refunds the difference); that figure is in the notes.

The emulator's ``bulk_delay`` (how long a bulk creation takes before it is ``done``) is 0.2 s by
default (``--bulk-delay``); any delay below the ~5 s the bucket needs to refill one chunk's
points is hidden by the pacing on the Standard plan.

Self-contained: the emulator runs in this process on a loopback port, the app's container talks
to it over HTTP with the same client as for Shopify; a fresh database, dropped at the end.

    .venv/bin/python bench/code_issuance.py            # about 4 minutes (the floor is ~3)
    .venv/bin/python bench/code_issuance.py --quick    # 1,000 codes: about 15 seconds
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make ``bench`` importable like the app's packages

import sqlalchemy as sa  # noqa: E402

from bench.common import (  # noqa: E402
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
    ratio,
    report,
    sqlalchemy_url,
)

NAME = "code_issuance"
TITLE = "Code issuance"
PLAN = "standard"
SHOP_OURS = "bench-codes-ours.myshopify.com"
SHOP_NAIVE = "bench-codes-naive.myshopify.com"
API_KEY = "ambassador-bench"
TARGET_FLOOR_RATIO = 1.2
TARGET_THROTTLED = 0.01
BATCH = 250
BUCKET, RESTORE = 2000.0, 100.0  # the Standard plan's (checked against the emulator's in main)


@dataclass(frozen=True)
class Plan:
    name: str
    codes: int
    naive_codes: int

    @classmethod
    def full(cls) -> Plan:
        return cls("full", 10_000, 300)

    @classmethod
    def quick(cls) -> Plan:
        return cls("quick", 1_000, 300)


# --- the floor ---------------------------------------------------------------------------------


def document_cost(document: str, variables: dict[str, Any], data: Any = None) -> tuple[int, int]:
    """(requested, actual) cost of ``document`` by the emulator's rules; ``data``: the answer
    whose actual cost is wanted (None: the requested cost for both)."""
    from graphql import FragmentDefinitionNode, get_operation_ast, parse

    from adapters.shopify.emulator.admin_schema import admin_schema
    from adapters.shopify.emulator.cost import QueryCost

    doc = parse(document)
    operation = get_operation_ast(doc)
    assert operation is not None
    fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    cost = QueryCost(admin_schema(), operation, fragments, variables)
    requested = cost.requested()
    actual = requested if data is None else min(requested, cost.actual(data))
    return requested, actual


def creation_answer(codes: int) -> dict[str, Any]:
    """A finished bulk creation of ``codes`` codes, all imported, as Shopify answers it."""
    return {
        "discountRedeemCodeBulkCreation": {
            "done": True,
            "codesCount": codes,
            "importedCount": codes,
            "failedCount": 0,
            "codes": {
                "nodes": [
                    {
                        "code": f"CODE{i}",
                        "errors": [],
                        "discountRedeemCode": {
                            "id": f"gid://shopify/DiscountRedeemCode/{i}",
                            "code": f"CODE{i}",
                        },
                    }
                    for i in range(codes)
                ],
                "pageInfo": {"hasNextPage": False, "endCursor": None},
            },
        }
    }


def minimal_calls(n: int) -> list[tuple[str, int, int]]:
    """The minimal calls of our design for ``n`` codes: (what, requested, actual)."""
    from adapters.shopify import discounts as d

    create = document_cost(d.CREATE_DISCOUNT, {}, {"discountCodeBasicCreate": {}})
    add = document_cost(d.BULK_ADD, {}, {"discountRedeemCodeBulkAdd": {}})
    # The app's cheap "is it done?" poll, when it has one: one per chunk at least.
    done_doc = getattr(d, "BULK_CREATION_DONE", None)
    poll = (
        document_cost(done_doc, {"id": "x"}, {"discountRedeemCodeBulkCreation": {"done": True}})
        if done_doc
        else None
    )
    calls = [("discountCodeBasicCreate", *create)]
    left = n - 1
    while left > 0:
        chunk = min(BATCH, left)
        calls.append(("discountRedeemCodeBulkAdd", *add))
        if poll is not None:
            calls.append(("discountRedeemCodeBulkCreation (done?)", *poll))
        calls.append(
            (
                "discountRedeemCodeBulkCreation",
                *document_cost(d.BULK_CREATION, {"id": "x"}, creation_answer(chunk)),
            )
        )
        left -= chunk
    return calls


def floor_seconds(calls: list[tuple[int, int]], bucket: float, restore: float) -> float:
    """Least time for ``calls`` (requested, actual) back to back, from a full bucket."""
    t, level = 0.0, bucket
    for requested, actual in calls:
        if level < requested:
            t += (requested - level) / restore
            level = requested
        level -= actual
    return t


# --- the shop ----------------------------------------------------------------------------------


def insert_ambassadors(engine: sa.Engine, shop_id: int, n: int, prefix: str) -> None:
    """``n`` active ambassadors whose codes are reserved, not yet in Shopify (bulk INSERT)."""
    from adapters.db.tables import ambassadors

    now = datetime.now(UTC)
    rows = [
        {
            "shop_id": shop_id,
            "email": f"{prefix.lower()}{i}@example.com",
            "first_name": "Amb",
            "last_name": f"{prefix.title()} {i}",
            "status": "active",
            "code": f"{prefix}{i:05d}",
            "code_state": "pending",
            "source": "bench",
            "social": {},
            "since": now,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(sa.insert(ambassadors), rows[start : start + 5000])


@dataclass
class Side:
    label: str
    ambassadors: int
    seconds: float
    calls: int
    throttled: int
    requested: int
    charged: int
    issued_db: int
    issued_shopify: int
    tail_rate: float | None = None  # ambassadors/s once the initial bucket was spent
    errors: int = 0

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.calls if self.calls else 0.0


def calls_of(emulator: Any, shop: str, since: int) -> list[dict[str, Any]]:
    return [c for c in emulator.graphql_calls[since:] if c["shop"] == shop]


def issued(engine: sa.Engine, emulator: Any, shop: str, shop_id: int) -> tuple[int, int]:
    from adapters.db.tables import ambassadors

    a = ambassadors.c
    with engine.connect() as conn:
        in_db = conn.execute(
            sa.select(sa.func.count()).where(
                a.shop_id == shop_id, a.code_state == "active", a.redeem_code_gid.is_not(None)
            )
        ).scalar_one()
    return int(in_db), len(emulator.shop(shop).redeem_codes)


def naive_issue(container: Any, shop: str, shop_id: int) -> int:
    """One ``discountCodeBasicCreate`` per ambassador, each recorded in its own transaction."""
    from connector.domain.ambassadors import CodeState

    token = container.access_token(shop)
    with container.uow() as uow:
        terms = uow.program.settings(shop_id).friend_discount
        people = uow.ambassadors.needing_code_sync(shop_id, 1_000_000)
    errors = 0
    for person in people:
        assert person.id is not None and person.code
        try:
            discount_gid, result = container.discounts.create_code_discount(
                shop, token, terms, f"{terms.title()} ({person.code})", person.code
            )
        except Exception:  # noqa: BLE001 - counted: the naive has no collision handling
            errors += 1
            continue
        with container.uow() as uow:
            current = uow.ambassadors.get(shop_id, person.id, for_update=True)
            assert current is not None
            uow.ambassadors.save(
                replace(
                    current,
                    code_state=CodeState.ACTIVE,
                    redeem_code_gid=result.redeem_code_gid,
                    discount_gid=discount_gid,
                )
            )
            uow.commit()
    return errors


def tail_rate(calls: list[dict[str, Any]], bucket: float, restore: float) -> float | None:
    """Successful calls per second once the initial bucket was spent (the steady state): the
    bucket is replayed from the calls' times and charged costs, and the tail starts at the
    first call that found fewer than three calls' worth of points."""
    done = sorted(
        (c["at"], c["actual_cost"] or 0) for c in calls if not c["throttled"] and c["status"] == 200
    )
    if not done:
        return None
    level, last = bucket, done[0][0]
    for i, (at, cost) in enumerate(done):
        level = min(bucket, level + (at - last) * restore)
        last = at
        if level < 3 * max(cost, 1):
            tail = [t for t, _ in done[i:]]
            break
        level -= cost
    else:
        return None
    if len(tail) < 10:
        return None
    return (len(tail) - 1) / (tail[-1] - tail[0])


def run_side(
    label: str,
    emulator: Any,
    container: Any,
    engine: sa.Engine,
    shop: str,
    shop_id: int,
    n: int,
    work: Callable[[], int],
) -> Side:
    since = len(emulator.graphql_calls)
    t0 = time.monotonic()
    errors = work()
    seconds = time.monotonic() - t0
    calls = calls_of(emulator, shop, since)
    in_db, in_shopify = issued(engine, emulator, shop, shop_id)
    return Side(
        label,
        n,
        seconds,
        calls=len(calls),
        throttled=sum(1 for c in calls if c["throttled"]),
        requested=sum(c["cost"] or 0 for c in calls),
        charged=sum(c["actual_cost"] or 0 for c in calls),
        issued_db=in_db,
        issued_shopify=in_shopify,
        errors=errors,
        tail_rate=tail_rate(calls, BUCKET, RESTORE) if label == "naive" else None,
    )


# --- report ------------------------------------------------------------------------------------


def summary_rows(ours: Side, naive: Side, n: int, floor: float, floor_calls: int) -> list[Row]:
    k = n / naive.ambassadors
    naive_t = (
        naive.seconds + (n - naive.ambassadors) / naive.tail_rate
        if naive.tail_rate
        else naive.seconds * k
    )
    naive_calls = naive.calls * k
    over_floor = ours.seconds / floor if floor > 0 else None
    return [
        (
            "codes issued (in Shopify and in the database)",
            f"{min(ours.issued_db, ours.issued_shopify):,}",
            f"{min(naive.issued_db, naive.issued_shopify):,} (of {naive.ambassadors})",
            "—",
            f"{n:,}",
            met(ours.issued_db == n and ours.issued_shopify == n and ours.errors == 0),
        ),
        (
            f"wall time for {n:,} codes (s)",
            fmt(ours.seconds, 1),
            f"{naive_t:,.0f} (extrap.)",
            ratio(ours.seconds, naive_t, 3),
            f"≤ {TARGET_FLOOR_RATIO * floor:,.1f}",
            met(ours.seconds <= TARGET_FLOOR_RATIO * floor),
        ),
        (
            "floor at 100 points/s, minimal calls (s)",
            fmt(floor, 1),
            fmt(max(0.0, (10 * n - BUCKET) / RESTORE), 0),
            "—",
            "—",
            "—",
        ),
        (
            "wall time ÷ floor",
            "—" if over_floor is None else f"{over_floor:.2f}×",
            "—",
            "—",
            f"≤ {TARGET_FLOOR_RATIO}×",
            met(over_floor is not None and over_floor <= TARGET_FLOOR_RATIO),
        ),
        (
            "codes per second",
            fmt(n / ours.seconds, 1),
            fmt(n / naive_t, 1),
            ratio(n / ours.seconds, n / naive_t, 1),
            "—",
            "—",
        ),
        (
            "GraphQL calls (minimal: " + f"{floor_calls})",
            f"{ours.calls:,}",
            f"{naive_calls:,.0f} (extrap.)",
            ratio(ours.calls, naive_calls, 3),
            "—",
            "—",
        ),
        (
            "throttled calls",
            f"{ours.throttled} ({ours.throttled_share:.1%})",
            f"{naive.throttled} ({naive.throttled_share:.1%})",
            "—",
            f"≤ {TARGET_THROTTLED:.0%}",
            met(ours.throttled_share <= TARGET_THROTTLED),
        ),
        (
            "points charged (actual cost)",
            f"{ours.charged:,}",
            f"{naive.charged * k:,.0f} (extrap.)",
            ratio(ours.charged, naive.charged * k, 3),
            "—",
            "—",
        ),
        (
            "points requested (incl. throttled calls)",
            f"{ours.requested:,}",
            f"{naive.requested * k:,.0f} (extrap.)",
            ratio(ours.requested, naive.requested * k, 3),
            "—",
            "—",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 codes")
    parser.add_argument("--codes", type=int, help="codes for ours (default 10,000)")
    parser.add_argument("--naive-codes", type=int, help="codes for the naive (default 300)")
    parser.add_argument(
        "--bulk-delay",
        type=float,
        default=0.2,
        help="seconds the emulator takes to finish a bulk creation (default 0.2)",
    )
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    cleanup_on_sigterm()
    warnings.filterwarnings("ignore", module="authlib")  # imported by the app; not ours to fix
    plan = Plan.quick() if args.quick else Plan.full()
    n = args.codes or plan.codes
    n_naive = args.naive_codes or plan.naive_codes

    from adapters.bootstrap import bootstrap
    from adapters.db.engine import make_engine
    from adapters.queue.inprocess import InProcessJobQueue
    from adapters.settings import Settings
    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread
    from adapters.shopify.emulator.cost import plan_limits
    from connector.domain.shops import OfflineToken, Shop, ShopStatus
    from connector.services import codes

    started = time.monotonic()
    busy = idle_check()
    limits = plan_limits(PLAN)
    assert (limits.maximum_available, limits.restore_rate) == (BUCKET, RESTORE)
    calls = minimal_calls(n)
    floor = floor_seconds(
        [(q, a) for _, q, a in calls], limits.maximum_available, limits.restore_rate
    )
    floor_requested = max(0.0, (sum(q for _, q, _ in calls) - limits.maximum_available))
    floor_requested /= limits.restore_rate
    secret = secrets.token_hex(16)
    emulator = ShopifyEmulator(API_KEY, secret, app_url=None, plan=PLAN, bulk_delay=args.bulk_delay)
    server, emulator_url = serve_in_thread(emulator)
    container = None
    try:
        with (
            tempfile.TemporaryDirectory(prefix="ambassador-bench-") as tmp,
            databases(libpq(args.pg_url)) as make_db,
        ):
            db_url = make_db("codes")
            settings = Settings.from_env(
                {
                    "APP_ENV": "development",
                    "DATABASE_URL": db_url,
                    "SECRET_KEY": secrets.token_urlsafe(32),
                    "ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                    "SHOPIFY_API_KEY": API_KEY,
                    "SHOPIFY_API_SECRET": secret,
                    "SHOPIFY_API_BASE_URL": emulator_url,
                    "INSTANCE_PATH": str(Path(tmp) / "instance"),
                    "LOG_LEVEL": "WARNING",
                }
            )
            container = bootstrap(settings, jobs=InProcessJobQueue(threaded=False))
            engine = make_engine(sqlalchemy_url(db_url))
            shop_ids = {}
            for domain, count, prefix in ((SHOP_OURS, n, "OURS"), (SHOP_NAIVE, n_naive, "NAIV")):
                emulator.add_shop(domain, currency="USD")
                token = emulator.issue_access_token(domain, expiring=False)
                with container.uow() as uow:
                    shop = uow.shops.save(
                        Shop(
                            None,
                            domain,
                            ShopStatus.INSTALLED,
                            token=OfflineToken(
                                token["access_token"], token["scope"], None, None, None
                            ),
                            name=domain,
                            currency="USD",
                            installed_at=datetime.now(UTC),
                        )
                    )
                    uow.commit()
                assert shop.id is not None
                shop_ids[domain] = shop.id
                insert_ambassadors(engine, shop.id, count, prefix)
            header = [
                *machine_lines(db_url, None, plan.name, busy),
                f"Shopify emulator in this process over loopback, plan {PLAN!r}: bucket "
                f"{limits.maximum_available:,.0f} points, restore {limits.restore_rate:.0f} "
                f"points/s; bulk creations done after {args.bulk_delay} s (`bulk_delay`)",
                f"ours: sync_codes for {n:,} active ambassadors with reserved codes: one "
                f"discountCodeBasicCreate, then discountRedeemCodeBulkAdd × {BATCH} + polling",
                f"naive: one discountCodeBasicCreate per ambassador on {n_naive} ambassadors, "
                f"extrapolated to {n:,} from the rate after its initial bucket was spent",
            ]
            print("\n".join(header), flush=True)
            print(f"ours: sync_codes for {n:,} codes ...", flush=True)

            def ours_work() -> int:
                report_ = codes.sync_codes(
                    container.uow,
                    container.discounts,
                    container.access_token,
                    container.clock,
                    SHOP_OURS,
                )
                return len(report_.errors) + report_.collisions

            ours = run_side(
                "ours", emulator, container, engine, SHOP_OURS, shop_ids[SHOP_OURS], n, ours_work
            )
            print(
                f"  {ours.seconds:.1f} s, {ours.calls} calls, {ours.throttled} throttled",
                flush=True,
            )
            print(f"naive: {n_naive} × discountCodeBasicCreate ...", flush=True)
            naive = run_side(
                "naive",
                emulator,
                container,
                engine,
                SHOP_NAIVE,
                shop_ids[SHOP_NAIVE],
                n_naive,
                lambda: naive_issue(container, SHOP_NAIVE, shop_ids[SHOP_NAIVE]),
            )
            print(
                f"  {naive.seconds:.1f} s, {naive.calls} calls, {naive.throttled} throttled",
                flush=True,
            )
            engine.dispose()
            container.close()
            container = None
    finally:
        if container is not None:
            container.close()
        server.shutdown()
        emulator.close()

    rows = summary_rows(ours, naive, n, floor, len(calls))
    per_chunk = [c for c in calls if c[0] == "discountRedeemCodeBulkCreation"]  # the reads
    by_operation: dict[str, list[int]] = {}
    for c in calls_of(emulator, SHOP_OURS, 0):
        entry = by_operation.setdefault(c["operation_name"] or "?", [0, 0, 0])
        entry[0] += 1
        entry[1] += bool(c["throttled"])
        entry[2] += c["actual_cost"] or 0
    notes = [
        "ratio = ours ÷ naive. Naive figures for "
        f"{n:,} codes are extrapolated from {naive.ambassadors} ambassadors: T(N) = T(n) + "
        f"(N − n) ÷ {fmt(naive.tail_rate, 2)} ambassadors/s (its rate once the initial bucket "
        f"was spent); calls and points × N/n.",
        f"floor: {len(calls)} minimal calls (1 create; per chunk of {BATCH}: a bulk add, 10 "
        f"points, {'a done? poll, 1 point, ' if len(calls) > 1 + 2 * len(per_chunk) else ''}"
        f"and a read of the finished creation, requested {per_chunk[0][1]} / charged "
        f"{per_chunk[0][2]} points) charge {sum(a for _, _, a in calls):,} points; from a full "
        f"bucket of {limits.maximum_available:,.0f} at {limits.restore_rate:.0f} points/s: "
        f"{floor:.1f} s. Counting requested instead of charged points would give "
        f"{floor_requested:.1f} s.",
        "ours by operation (calls / throttled / points charged): "
        + "; ".join(f"{k} {v[0]} / {v[1]} / {v[2]:,}" for k, v in sorted(by_operation.items())),
    ]
    chunks = len(per_chunk)
    if floor < 10 * chunks * max(args.bulk_delay, 0.1):
        notes.append(
            f"with {n:,} codes the floor ({floor:.1f} s) is barely above what the bucket holds: "
            f"the {chunks} bulk creations' own delay ({chunks} × {args.bulk_delay} s) and the "
            "database work are no longer hidden by the pacing; the target is meant for 10,000 "
            "codes (the full run)."
        )
    notes += busy_notes(busy)
    if ours.errors or naive.errors:
        notes.append(f"errors: ours {ours.errors}, naive {naive.errors}")
    report(NAME, TITLE, plan.name, header, rows, notes, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
