"""Fault injection: PostgreSQL crashes and restarts in the middle of a run of real orders.

The app runs as processes (gunicorn and the RQ worker) on a PostgreSQL cluster of the test's
own, which is stopped in ``immediate`` mode (a crash: in-flight transactions lost) while the
emulator's checkouts keep sending webhooks, and started again a few seconds later. While it is
down, intake must answer 503 (Shopify keeps what it could not deliver); then the emulator
redelivers what failed (Shopify's retries: same body, same webhook id), the worker and the
sweeper recover, and afterwards nothing is lost or doubled: every acknowledged webhook stored
once and applied, each order's ledger equal to the reward of its final state in the emulator.
The recovery time is printed.
"""

from __future__ import annotations

import random
import re
import threading
import time

import pytest

from tests.conftest import SHOP
from tests.faults.harness import (
    App,
    Store,
    check_invariants,
    drained,
    running_system,
    unacknowledged,
    wait_until,
)

pytestmark = pytest.mark.faults

ORDERS = 150
DOWN_AFTER = 40  # orders placed before the crash
DOWN_FOR = 4.0  # seconds


def redeliver_until_acknowledged(emulator, timeout: float = 120) -> int:
    """Shopify's retries: every failed delivery again, until the app took them all."""
    rounds = 0
    started = time.monotonic()
    while unacknowledged(emulator):
        if time.monotonic() - started > timeout:
            pytest.fail(f"{len(unacknowledged(emulator))} webhooks still refused")
        emulator.redeliver_failed()
        rounds += 1
        if unacknowledged(emulator):
            time.sleep(1)
    return rounds


def released(app: App) -> int:
    """Deliveries whose batch the crash lost, released by the worker (its log says so)."""
    found = re.findall(r"inbox.released_unfinished_claims.*?deliveries=(\d+)", app.logs("worker"))
    return sum(int(n) for n in found)


def test_postgres_crash_mid_run_answers_503_then_shopify_retries_land(tmp_path):
    rng = random.Random(20261203)
    started = time.monotonic()
    with running_system(tmp_path) as system:
        app, emulator, pg, db = system.app, system.emulator, system.pg, system.db
        app.start_worker()
        store = Store(emulator, app.url, SHOP)
        store.install()
        store.enrol(6)

        timeline: dict[str, float] = {}

        def crash_and_restart() -> None:
            wait_until(lambda: len(store.orders) >= DOWN_AFTER, 120, "orders before the crash")
            pg.stop("immediate")
            timeline["down"] = time.monotonic()
            time.sleep(DOWN_FOR)
            pg.start()
            timeline["up"] = time.monotonic()

        chaos = threading.Thread(target=crash_and_restart)
        chaos.start()
        store.shopping(rng, ORDERS, pause=0.03)
        chaos.join()
        load_done = time.monotonic()

        refused = [d for d in emulator.deliveries if d["status"] == 503]
        failed = [d for d in emulator.deliveries if not d["ok"]]
        assert refused, "intake never answered 503 while PostgreSQL was down"
        assert {d["status"] for d in failed} <= {503}, {d["status"] for d in failed}
        rounds = redeliver_until_acknowledged(emulator)
        acked_at = time.monotonic()

        # No lease is waited out: rows whose batch the crash lost are released by the
        # worker's next drain (the sweeper queues one within 30 s).
        wait_until(lambda: drained(db), 75, "the inbox to drain (sweeper: 30 s)", 0.5)
        recovered = time.monotonic()
        verdict = check_invariants(db, [store])
        print(
            f"\nPostgreSQL down {timeline['up'] - timeline['down']:.1f} s (crash, immediate); "
            f"{len(refused)} webhooks answered 503, all redelivered in {rounds} round(s); "
            f"acknowledged {acked_at - timeline['up']:.1f} s and inbox drained "
            f"{recovered - timeline['up']:.1f} s after PostgreSQL was back "
            f"(load ended {load_done - timeline['up']:.1f} s after); "
            f"rows released after a lost batch: {released(app)}; "
            f"{verdict.orders} orders, {verdict.credited} credited, "
            f"{verdict.deliveries} deliveries; test took {time.monotonic() - started:.0f} s"
        )
