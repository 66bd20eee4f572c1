"""Salesforce sync: API calls to keep 10,000 ambassadors on their Contacts, against the emulator.

The issue: "Sync 10,000 changed ambassadors and then 100 changed out of 10,000: API calls used
next to the floor (ceil(n/200) plus fixed overhead) and next to one upsert per record, same
run. Target: ≤ 1 call per 190 records, 0 calls when nothing changed."

Scenarios, in order, on one org (the Salesforce emulator in this process, over loopback HTTP,
through the app's own client, ``adapters/salesforce/client.py``), with N ambassadors (10,000;
``--quick``: 2,000) of which a fifth already have a Contact with their email in the org:

1. **backfill**: the first sync after connecting: every ambassador is new to the org; each is
   matched by email (queries of ~450 emails each), then written (Bulk API 2.0 above 2,000
   records; sObject Collections of 200 below).
2. **N changed**: every ambassador's statistics changed (all linked now): upserts by
   ``Ambassador_Id__c``.
3. **100 changed of N**.
4. **nothing changed**.

**ours**: ``connector.services.salesforce.sync`` (change detection by a digest of the values
last written). Calls are counted by the emulator (requests charged to the org's daily pool).

**floor**: ceil(n/200) collection calls for the writes, plus the fixed overhead of the scenario
(the email-match queries of a backfill: ceil(n / emails per query)); with Bulk API 2.0 the
writes' floor is the job's fixed calls (create, upload, close, one poll, two result reads).

**naive**: one REST upsert per record written (``PATCH /sobjects/Contact/Ambassador_Id__c/…``),
measured on a sample of ``--naive`` records in a second org of the same emulator and
extrapolated linearly (one call per record by construction; the sample gives its wall time).
A sync without change tracking would also write every ambassador in scenarios 3 and 4.

    .venv/bin/python bench/salesforce_sync.py            # 10,000 ambassadors, about a minute
    .venv/bin/python bench/salesforce_sync.py --quick    # 2,000
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import secrets
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make ``bench`` importable like the app's packages

import httpx  # noqa: E402
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

NAME = "salesforce_sync"
TITLE = "Salesforce sync"
SHOP = "bench-salesforce.myshopify.com"
CLIENT_ID, CLIENT_SECRET = "bench-sf-client", "bench-sf-secret"
APP_URL = "http://127.0.0.1:8000"
TARGET_PER_CALL = 190
CHANGED_FEW = 100


class NoJobs:
    """The connect's automatic backfill is run by the benchmark itself, to be measured."""

    def enqueue(self, *args: Any, **kwargs: Any) -> None: ...

    def trigger(self, job: Any) -> None: ...

    def acknowledge(self, job: Any) -> None: ...


@dataclass
class Step:
    name: str
    records: int  # ambassadors written
    calls: int
    seconds: float
    floor: int
    bulk_jobs: int
    status: str


def insert_ambassadors(engine: sa.Engine, shop_id: int, n: int) -> list[int]:
    from adapters.db.tables import ambassador_stats, ambassadors

    now = datetime.now(UTC)
    rows = [
        {
            "shop_id": shop_id,
            "email": f"ambassador{i}@example.com",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "status": "active",
            "code": f"BENCH{i}",
            "code_state": "active",
            "source": "import",
            "customer_tagged": False,
            "tier_locked": False,
            "social": {},
            "since": now,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        ids = [r.id for r in conn.execute(sa.insert(ambassadors).returning(ambassadors.c.id), rows)]
        conn.execute(
            sa.insert(ambassador_stats),
            [
                {
                    "ambassador_id": aid,
                    "shop_id": shop_id,
                    "attributed_orders": 1,
                    "attributed_revenue": 100,
                    "currency": "USD",
                    "pending": 10,
                    "approved": 0,
                    "paid": 0,
                    "reversed": 0,
                    "balance": 10,
                    "last_referral_at": now,
                    "updated_at": now,
                }
                for aid in ids
            ],
        )
    return ids


def bump_stats(engine: sa.Engine, ids: list[int]) -> None:
    from adapters.db.tables import ambassador_stats

    s = ambassador_stats.c
    with engine.begin() as conn:
        conn.execute(
            sa.update(ambassador_stats)
            .where(s.ambassador_id.in_(ids))
            .values(attributed_orders=s.attributed_orders + 1)
        )


def connect(container: Any) -> None:
    from connector.services import salesforce

    with container.uow() as uow:
        shop = uow.shops.get(SHOP)
    url = salesforce.begin_connect(
        container.uow,
        container.salesforce,
        container.ids,
        container.clock,
        shop,
        container.salesforce_redirect_uri,
    )
    location = httpx.get(url, follow_redirects=False, timeout=30).headers["Location"]
    query = parse_qs(urlsplit(location).query)
    salesforce.complete_connect(
        container.uow,
        container.salesforce,
        container.jobs,
        container.clock,
        query["state"][0],
        query["code"][0],
        container.salesforce_redirect_uri,
    )


def naive_sample(base_url: str, token: str, n: int) -> tuple[int, float]:
    """One REST upsert per record; returns (calls, seconds)."""
    started = time.monotonic()
    calls = 0
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for i in range(n):
            response = http.patch(
                f"/services/data/v62.0/sobjects/Contact/Ambassador_Id__c/naive:{i}",
                json={
                    "LastName": f"Last{i}",
                    "Email": f"naive{i}@example.com",
                    "Ambassador_Status__c": "active",
                    "Ambassador_Orders__c": 1,
                },
            )
            calls += 1
            response.raise_for_status()
    return calls, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 ambassadors")
    parser.add_argument("--ambassadors", type=int, help="N (default 10,000)")
    parser.add_argument("--naive", type=int, default=500, help="naive sample size (500)")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    cleanup_on_sigterm()
    warnings.filterwarnings("ignore", module="authlib")
    plan = "quick" if args.quick else "full"
    n = args.ambassadors or (2000 if args.quick else 10_000)

    from adapters.bootstrap import bootstrap
    from adapters.db.engine import make_engine
    from adapters.salesforce.client import SalesforceGateway
    from adapters.salesforce.emulator import SalesforceEmulator, serve_in_thread
    from adapters.settings import Settings
    from connector.domain.salesforce import COLLECTION_SIZE, email_query_batches
    from connector.domain.shops import OfflineToken, Shop, ShopStatus
    from connector.services import salesforce

    started = time.monotonic()
    busy = idle_check()
    emulator = SalesforceEmulator(
        CLIENT_ID,
        CLIENT_SECRET,
        redirect_uris=[f"{APP_URL}/salesforce/callback"],
        auto_approve=True,
        ambassador_fields=True,
        daily_api_limit=5_000_000,
    )
    naive_org = SalesforceEmulator(
        CLIENT_ID,
        CLIENT_SECRET,
        redirect_uris=[f"{APP_URL}/salesforce/callback"],
        auto_approve=True,
        ambassador_fields=True,
        daily_api_limit=5_000_000,
    )
    server, base_url = serve_in_thread(emulator)
    naive_server, naive_url = serve_in_thread(naive_org)
    existing = n // 5
    for i in range(existing):  # a fifth of them are already Contacts in the org
        emulator.add_contact(LastName=f"Existing{i}", Email=f"ambassador{i * 5}@example.com")
    bulk_ok = True
    steps: list[Step] = []
    container = None
    try:
        with (
            tempfile.TemporaryDirectory(prefix="ambassador-bench-") as tmp,
            databases(libpq(args.pg_url)) as make_db,
        ):
            db_url = make_db("salesforce")
            settings = Settings.from_env(
                {
                    "APP_ENV": "development",
                    "DATABASE_URL": db_url,
                    "SECRET_KEY": secrets.token_urlsafe(32),
                    "ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                    "SHOPIFY_API_KEY": "bench",
                    "SHOPIFY_API_SECRET": "bench-secret",
                    "SALESFORCE_CLIENT_ID": CLIENT_ID,
                    "SALESFORCE_CLIENT_SECRET": CLIENT_SECRET,
                    "SALESFORCE_LOGIN_URL": base_url,
                    "APP_URL": APP_URL,
                    "INSTANCE_PATH": str(Path(tmp) / "instance"),
                    "LOG_LEVEL": "WARNING",
                }
            )
            gateway = SalesforceGateway(CLIENT_ID, CLIENT_SECRET, base_url, bulk_poll=0.05)
            container = bootstrap(settings, jobs=NoJobs(), salesforce=gateway)
            engine = make_engine(sqlalchemy_url(db_url))
            with container.uow() as uow:
                shop = uow.shops.save(
                    Shop(
                        None,
                        SHOP,
                        ShopStatus.INSTALLED,
                        token=OfflineToken("x", "", None, None, None),
                        name=SHOP,
                        currency="USD",
                        installed_at=datetime.now(UTC),
                    )
                )
                uow.commit()
            assert shop.id is not None
            ids = insert_ambassadors(engine, shop.id, n)
            connect(container)
            print("\n".join(machine_lines(db_url, None, plan, busy)), flush=True)
            queries = len(list(email_query_batches(f"ambassador{i}@example.com" for i in range(n))))

            def step(name: str, records: int, floor: int, **kwargs: Any) -> Step:
                before = emulator.api_call_count()
                t0 = time.monotonic()
                result = salesforce.sync(
                    container.uow,
                    container.salesforce,
                    container.clock,
                    SHOP,
                    budget_share=1.0,
                    **kwargs,
                )
                s = Step(
                    name,
                    result.written,
                    emulator.api_call_count() - before,
                    time.monotonic() - t0,
                    floor,
                    result.bulk_jobs,
                    result.status,
                )
                print(
                    f"  {name}: {s.records:,} written in {s.calls} calls, {s.seconds:.1f} s "
                    f"({s.status}{', bulk' if s.bulk_jobs else ''})",
                    flush=True,
                )
                if result.error:
                    print(f"    {result.error}", flush=True)
                steps.append(s)
                return s

            def floor(records: int, overhead: int = 0) -> int:
                """The issue's floor: ceil(n/200) collection calls plus fixed overhead."""
                return math.ceil(records / COLLECTION_SIZE) + overhead

            first = step(f"backfill of {n:,}", n, floor(n, queries))
            if first.status not in {"done", "partial"} or first.records < n:
                # The emulator has no Bulk API 2.0 (yet): the same backfill through collections.
                bulk_ok = False
                steps.pop()
                with container.uow() as uow:
                    uow.salesforce.forget_all(shop.id)
                    uow.commit()
                emulator.reset_audit()
                step(
                    f"backfill of {n:,} (collections only)",
                    n,
                    floor(n, queries),
                    bulk_threshold=10**9,
                )
            bump_stats(engine, ids)
            step(f"{n:,} changed", n, floor(n), **({} if bulk_ok else {"bulk_threshold": 10**9}))
            bump_stats(engine, ids[:: max(1, n // CHANGED_FEW)][:CHANGED_FEW])
            step(f"{CHANGED_FEW} changed of {n:,}", CHANGED_FEW, 1)
            step("nothing changed", 0, 0)
            naive_gateway = SalesforceGateway(CLIENT_ID, CLIENT_SECRET, naive_url)
            verifier = secrets.token_urlsafe(48)
            url = naive_gateway.authorize_url("s", verifier, f"{APP_URL}/salesforce/callback")
            location = httpx.get(url, follow_redirects=False, timeout=30).headers["Location"]
            code = parse_qs(urlsplit(location).query)["code"][0]
            token = naive_gateway.exchange_code(code, verifier, f"{APP_URL}/salesforce/callback")
            naive_calls, naive_seconds = naive_sample(
                token.instance_url, token.access_token, args.naive
            )
            engine.dispose()
    finally:
        if container is not None:
            container.close()
        server.shutdown()
        naive_server.shutdown()

    per_record = naive_seconds / naive_calls
    rows: list[Row] = []
    for s in steps:
        naive_n = s.records
        target = f"≤ {math.floor(s.records / TARGET_PER_CALL)}" if s.records else "0"
        ok = s.calls == 0 if s.records == 0 else s.calls <= s.records / TARGET_PER_CALL
        if s.name.startswith(f"{CHANGED_FEW} changed"):
            target, ok = "—", None  # the ratio target is for the large syncs
        rows.append(
            (
                f"{s.name}: API calls",
                str(s.calls),
                f"{naive_n:,}",
                ratio(s.calls, naive_n, 4),
                target,
                met(ok),
            )
        )
        rows.append(
            (f"{s.name}: floor (calls)", str(s.floor), "—", ratio(s.calls, s.floor), "—", "—")
        )
        rows.append(
            (
                f"{s.name}: records per call",
                fmt(s.records / s.calls, 0) if s.calls else "—",
                "1",
                "—",
                f"≥ {TARGET_PER_CALL}" if s.records >= 1000 else "—",
                "—",
            )
        )
        rows.append(
            (
                f"{s.name}: wall time (s)",
                fmt(s.seconds),
                fmt(per_record * naive_n),
                ratio(s.seconds, per_record * naive_n),
                "—",
                "—",
            )
        )
    notes = [
        f"N = {n:,} ambassadors; {existing:,} of them had a Contact with their email before the "
        f"backfill (matched, never duplicated). Email-match queries: {queries} for {n:,} emails.",
        "floor: the issue's, ceil(n/200) collection calls plus fixed overhead (the backfill's "
        "email-match queries). Above 2,000 records ours goes below it with Bulk API 2.0: a job "
        "costs 6 calls whatever its size (create, upload, close, poll, successful and failed "
        "results); a backfill's 2,000 email-matched Contacts are written by Id (collections).",
        "wall time of the small syncs is the change detection: every ambassador's values are "
        "read and hashed (one query), which is what makes 'nothing changed' cost 0 calls.",
        f"naive: one REST upsert per record written; measured on {naive_calls} records in a "
        f"second org ({per_record * 1000:.1f} ms each) and extrapolated. A sync without change "
        f"tracking would make {n:,} calls in every scenario, including 'nothing changed'.",
    ]
    if not bulk_ok:
        notes.append(
            "the emulator had no Bulk API 2.0: the backfill and the large sync ran "
            "through sObject Collections only (bulk figures not measured)."
        )
    notes += busy_notes(busy)
    report(NAME, TITLE, plan, [*machine_lines(None, None, plan, busy)], rows, notes, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
