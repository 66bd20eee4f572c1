"""Multi-shop fairness: the latency of small shops' webhooks while one shop sends 10× their
traffic, with the inbox's fair claim (ours) next to a FIFO claim (naive: oldest rows first,
whatever their shop; the claim before the fair one).

The issue: "one shop at 10× traffic does not delay the others beyond 2× their solo latency".

Three installed shops; order webhooks (``orders/create``, no codes: the attribution still runs
and writes each order's explanation) are stored through the inbox's own ``add`` at a steady
rate for ``--seconds``, while one drain loop (``process_inbox`` as a worker runs it: batches
of 200, short ones while several shops have work) applies them; then it drains what is left.
Latency of a delivery = ``processed_at`` − ``received_at`` (both written by the app).

* **capacity**: the drain's rate on a pre-filled inbox (events/s), measured first;
* **solo**: shop A alone at ``--rate`` webhooks/s;
* **loaded**: shops A and B at that rate each and the big shop at 10× it, the big shop's flash
  sale having just left a backlog of ``--backlog`` seconds of the drain's capacity in the inbox
  (a feeder in the same process cannot offer more than the drain takes, so the overload is
  this backlog); run once with the FIFO claim in batches of 200 and once with ours.

The table gives A's and B's p50, p95 and max latency in each run, and loaded ÷ solo (target
≤ 2×), and where the loaded drain's time went (mean claim and apply per batch).
Self-contained: a fresh database (``ambassador_bench_<pid>_*``), dropped at the end.

    .venv/bin/python bench/shop_fairness.py            # about 2 minutes
    .venv/bin/python bench/shop_fairness.py --quick    # about 1 minute
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make ``bench`` importable like the app's packages

import psycopg  # noqa: E402

from bench.common import (  # noqa: E402
    DEFAULT_PG_URL,
    Row,
    cleanup_on_sigterm,
    databases,
    fmt,
    idle_check,
    libpq,
    machine_lines,
    met,
    percentile,
    report,
    sqlalchemy_url,
)

BIG, SHOP_A, SHOP_B = "big.myshopify.com", "small-a.myshopify.com", "small-b.myshopify.com"
TICK = 0.05  # the feeder stores a tick's worth of webhooks at a time
BATCH = int(os.environ.get("FAIRNESS_BATCH", "200"))  # experiment only


def payload(order_id: int) -> str:
    now = datetime.now(UTC).isoformat()
    return json.dumps({
        "id": order_id, "name": f"#{order_id}", "currency": "USD", "created_at": now,
        "updated_at": now, "financial_status": "paid", "test": False,
        "email": f"buyer{order_id}@example.com",
        "customer": {"id": order_id, "email": f"buyer{order_id}@example.com"},
        "discount_codes": [], "line_items": [
            {"id": order_id * 10, "quantity": 1, "price": "50.00", "discount_allocations": []}],
        "refunds": [],
    })


class Inbox:
    """The app's unit of work and handlers on one database."""

    def __init__(self, db_url: str) -> None:
        from adapters.clock import SystemClock
        from adapters.crypto import TokenCipher
        from adapters.db.engine import make_engine
        from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
        from connector.services.handlers import build_handlers

        self.engine = make_engine(sqlalchemy_url(db_url))
        self.clock = SystemClock()
        cipher = TokenCipher(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        self.uow: Callable[[], Any] = lambda: SqlAlchemyUnitOfWork(self.engine, cipher, self.clock)
        self.handlers = build_handlers(self.clock)
        self.next_id = 1

    def install(self, *domains: str) -> None:
        from connector.domain.shops import Shop, ShopStatus

        with self.uow() as uow:
            for domain in domains:
                uow.shops.save(Shop(None, domain, ShopStatus.INSTALLED, name=domain,
                                    currency="USD", installed_at=datetime.now(UTC)))
            uow.commit()

    def store(self, shop: str, n: int) -> None:
        from connector.domain.webhooks import IncomingWebhook

        with self.uow() as uow:
            for _ in range(n):
                self.next_id += 1
                uow.inbox.add(IncomingWebhook("orders/create", secrets.token_hex(8), shop,
                                              payload(self.next_id), "2026-07", None, None),
                              self.clock.now())
            uow.commit()

    def drain(self, stop: threading.Event, shared: bool) -> None:
        """Drain until ``stop``; ``shared``: short batches while several shops have work (as
        the app does), else always ``BATCH`` (the naive run)."""
        from connector.services.inbox import SHARED_BATCH_SIZE, process_inbox

        while True:
            done = process_inbox(self.uow, self.handlers, self.clock, batch_size=BATCH,
                                 shared_batch_size=SHARED_BATCH_SIZE if shared else None)
            if not done.batches:
                if stop.is_set():
                    return
                time.sleep(0.02)

    def reset(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE webhook_deliveries, orders, order_refunds,"
                                 " order_attributions RESTART IDENTITY CASCADE")


def fifo_claim(
    self: Any, limit: int, now: datetime, lease: timedelta, *, shared_limit: int | None = None
) -> list[Any]:
    """The naive claim: the oldest claimable rows, whatever their shop (``SKIP LOCKED``), in
    batches of ``limit`` however many shops wait (``shared_limit`` ignored)."""
    import sqlalchemy as sa

    from adapters.db.tables import webhook_deliveries
    from connector.domain.webhooks import Delivery, DeliveryStatus

    t = webhook_deliveries.c
    ids = (sa.select(t.id).where(self._claimable(now)).order_by(t.id).limit(limit)
           .with_for_update(skip_locked=True))
    rows = self._conn.execute(
        sa.update(webhook_deliveries).where(t.id.in_(ids.scalar_subquery()))
        .values(status=DeliveryStatus.PROCESSING.value, locked_until=now + lease,
                attempts=t.attempts + 1)
        .returning(t.id, t.topic, t.webhook_id, t.shop_domain, t.body, t.attempts,
                   t.received_at, t.triggered_at)).all()
    return sorted((Delivery(id=r.id, topic=r.topic, webhook_id=r.webhook_id,
                            shop_domain=r.shop_domain, body=r.body, attempts=r.attempts,
                            received_at=r.received_at, triggered_at=r.triggered_at)
                   for r in rows), key=lambda d: d.id)


class BatchTimes:
    """Where a drain's time goes: each claim (its statements and commit) and each batch's
    apply (its transaction), timed by wrapping the repository's ``claim`` and the inbox's
    ``_apply_batch`` while a run lasts."""

    def __init__(self) -> None:
        self.claims: list[tuple[float, int]] = []  # (seconds, rows claimed)
        self.applies: list[float] = []

    def __enter__(self) -> BatchTimes:
        from adapters.db.repositories import SqlAlchemyInboxRepository
        from connector.services import inbox

        self._claim, self._apply = SqlAlchemyInboxRepository.claim, inbox._apply_batch
        claim, apply = self._claim, self._apply

        def timed_claim(repo: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            rows = claim(repo, *args, **kwargs)
            self.claims.append((time.perf_counter() - started, len(rows)))
            return rows

        def timed_apply(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return apply(*args, **kwargs)
            finally:
                self.applies.append(time.perf_counter() - started)

        SqlAlchemyInboxRepository.claim = timed_claim  # type: ignore[method-assign]
        inbox._apply_batch = timed_apply
        return self

    def __exit__(self, *exc: object) -> None:
        from adapters.db.repositories import SqlAlchemyInboxRepository
        from connector.services import inbox

        SqlAlchemyInboxRepository.claim = self._claim  # type: ignore[method-assign]
        inbox._apply_batch = self._apply

    def summary(self) -> tuple[int, float, float, float]:
        """Batches with rows, their mean size, mean claim and mean apply time (ms)."""
        claims = [(t, n) for t, n in self.claims if n]
        if not claims:
            return 0, 0.0, 0.0, 0.0
        return (len(claims), sum(n for _, n in claims) / len(claims),
                1000 * sum(t for t, _ in claims) / len(claims),
                1000 * sum(self.applies) / max(len(self.applies), 1))


def capacity(inbox: Inbox, n: int) -> float:
    inbox.store(SHOP_A, n)
    from connector.services.inbox import process_inbox

    started = time.monotonic()
    process_inbox(inbox.uow, inbox.handlers, inbox.clock)
    rate = n / (time.monotonic() - started)
    inbox.reset()
    return rate


def run(
    inbox: Inbox, rates: dict[str, float], seconds: float, backlog: int = 0, shared: bool = True
) -> dict[str, list[float]]:
    """Store ``backlog`` of the big shop, then feed at ``rates`` (webhooks/s per shop) for
    ``seconds`` while draining; latencies (s) per shop."""
    for start in range(0, backlog, 500):
        inbox.store(BIG, min(500, backlog - start))
    stop = threading.Event()
    drainer = threading.Thread(target=inbox.drain, args=(stop, shared))
    drainer.start()
    owed = dict.fromkeys(rates, 0.0)
    started = time.monotonic()
    ticks = 0
    while time.monotonic() - started < seconds:
        for shop, rate in rates.items():
            owed[shop] += rate * TICK
            whole = int(owed[shop])
            if whole:
                inbox.store(shop, whole)
                owed[shop] -= whole
        ticks += 1
        time.sleep(max(0.0, started + ticks * TICK - time.monotonic()))
    stop.set()
    drainer.join()
    with psycopg.connect(libpq(str(inbox.engine.url.render_as_string(hide_password=False))))as c:
        rows = c.execute(
            "SELECT shop_domain, extract(epoch FROM processed_at - received_at)"
            " FROM webhook_deliveries WHERE status = 'processed'").fetchall()
    inbox.reset()
    out: dict[str, list[float]] = {}
    for shop, latency in rows:
        out.setdefault(shop, []).append(float(latency))
    return {shop: sorted(v) for shop, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 s per run instead of 20")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="webhooks/s of each small shop (the big one: 10×)")
    parser.add_argument("--backlog", type=float, default=4.0,
                        help="the big shop's backlog, in seconds of the drain's capacity")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    cleanup_on_sigterm()
    plan = "quick" if args.quick else "full"
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    started = time.monotonic()
    busy = idle_check()

    from adapters.db.repositories import SqlAlchemyInboxRepository
    from connector.services.inbox import SHARED_BATCH_SIZE

    with databases(libpq(args.pg_url)) as make_db:
        db_url = make_db("fairness")
        inbox = Inbox(db_url)
        inbox.install(BIG, SHOP_A, SHOP_B)
        cap = capacity(inbox, 600 if args.quick else 1500)
        r = args.rate
        backlog = int(cap * args.backlog)
        print(f"drain capacity {cap:.0f} events/s; small shops at {r:.1f}/s, big at "
              f"{10 * r:.1f}/s after a backlog of {backlog:,}", flush=True)
        solo = run(inbox, {SHOP_A: r}, seconds)
        fair_claim = SqlAlchemyInboxRepository.claim
        SqlAlchemyInboxRepository.claim = fifo_claim  # type: ignore[method-assign]
        try:
            naive = run(inbox, {BIG: 10 * r, SHOP_A: r, SHOP_B: r}, seconds, backlog,
                        shared=False)
        finally:
            SqlAlchemyInboxRepository.claim = fair_claim  # type: ignore[method-assign]
        with BatchTimes() as times:
            ours = run(inbox, {BIG: 10 * r, SHOP_A: r, SHOP_B: r}, seconds, backlog)
        header = [
            *machine_lines(db_url, None, plan, busy),
            f"one drain loop in this process (process_inbox: batches of {BATCH}, of "
            f"{SHARED_BATCH_SIZE} while several shops have work); capacity "
            f"{cap:.0f} events/s; {seconds:.0f} s of steady traffic per run: shops A and B at "
            f"{r:.1f} webhooks/s each, the big shop at {10 * r:.1f}/s after its flash sale left "
            f"{backlog:,} deliveries ({args.backlog:.0f} s of capacity) in the inbox; solo: A "
            "alone at the same rate",
        ]
        rows: list[Row] = []
        base = solo[SHOP_A]
        for label, q in (("p50", 50), ("p95", 95), ("max", 100)):
            s = percentile(base, q)
            rows.append((f"shop A solo: {label} latency (ms)", fmt((s or 0) * 1000, 0), "—",
                         "—", "—", "—"))
        for shop in (SHOP_A, SHOP_B):
            name = "A" if shop == SHOP_A else "B"
            for label, q in (("p50", 50), ("p95", 95), ("max", 100)):
                o, n_ = percentile(ours[shop], q), percentile(naive[shop], q)
                s = percentile(base, q)
                rows.append((f"shop {name} beside 10× shop: {label} latency (ms)",
                             fmt((o or 0) * 1000, 0), fmt((n_ or 0) * 1000, 0),
                             f"{(o or 0) / (n_ or 1):.2f}×", "—", "—"))
                ratio_ours = (o or 0) / (s or 1)
                ratio_naive = (n_ or 0) / (s or 1)
                rows.append((f"shop {name}: {label} loaded ÷ solo", f"{ratio_ours:.2f}×",
                             f"{ratio_naive:.2f}×", "—", "≤ 2×", met(ratio_ours <= 2)))
        big = (percentile(ours[BIG], 50), percentile(naive[BIG], 50))
        rows.append(("big shop: p50 latency (ms)", fmt((big[0] or 0) * 1000, 0),
                     fmt((big[1] or 0) * 1000, 0), "—", "—", "—"))
        batches, size, claim_ms, apply_ms = times.summary()
        rows.append(("loaded run (ours): batches, mean size", f"{batches:,}, {size:.0f}", "—",
                     "—", "—", "—"))
        rows.append(("loaded run (ours): mean claim / apply per batch (ms)",
                     f"{claim_ms:.1f} / {apply_ms:.1f}", "—", "—", "—", "—"))
        applied = sum(map(len, ours.values())), sum(map(len, naive.values()))
        rows.append(("deliveries applied (loaded run)", f"{applied[0]:,}", f"{applied[1]:,}",
                     "—", "—", "—"))
        notes = [
            "naive = the FIFO claim (oldest rows first, any shop, batches of 200); ours = the "
            "fair claim (adapters/db/repositories.py) with short batches while several shops "
            "have work (connector/services/inbox.py). Latency = processed_at − received_at. "
            "The loaded run's batches include the drain of what is left after the feed stops.",
        ]
        print("\n".join(header))
        report("shop_fairness", "Multi-shop fairness", plan, header, rows, notes, started)
        inbox.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
