"""Graceful shutdown and rolling restarts, with real processes.

1. SIGTERM to ``ambassador worker`` in the middle of a long drain: the batch under way is
   committed, no new one is claimed, the process exits well within the platform's 30 s, and no
   delivery is left leased (``processing``): nothing waits for a lease to expire. The next
   worker finishes the rest.
2. A rolling restart during load: the web process (gunicorn) and then each of two workers get
   SIGTERM and are replaced while the emulator's checkouts keep sending webhooks. Requests in
   flight are answered (a refused connection, never a cut answer), Shopify's retries land,
   nothing waits for a lease, and afterwards nothing is lost or doubled.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import threading
import time
import uuid

import psycopg
import pytest

from tests.conftest import SHOP
from tests.faults.harness import (
    Store,
    check_invariants,
    drained,
    inbox_counts,
    libpq,
    running_system,
    stop_process,
    unacknowledged,
    wait_until,
)

pytestmark = pytest.mark.faults

PLATFORM_GRACE = 30.0  # Heroku: SIGTERM, then SIGKILL 30 s later


@pytest.fixture
def system(tmp_path):
    with running_system(tmp_path) as s:
        yield s.app, s.emulator, s.db


def terminate(proc) -> float:
    """SIGTERM; the seconds the process took to exit (it must exit cleanly, in time)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(PLATFORM_GRACE)
    took = time.monotonic() - sent
    assert proc.returncode == 0, proc.returncode
    return took


def test_sigterm_to_a_worker_mid_drain_commits_its_batch_and_leaves_nothing_leased(system):
    app, emulator, db = system
    worker = app.start_worker()
    store = Store(emulator, app.url, SHOP)
    store.install()
    store.enrol(4)
    assert stop_process(worker) == 0

    # A backlog: 120 orders' webhooks, each delivered five times over (new webhook ids).
    emulator.webhook_mode = "manual"
    store.shopping(random.Random(7), 120)
    sent = list(emulator.webhooks.pending)
    emulator.webhooks.pending.clear()
    for _ in range(5):
        for d in sent:
            new_id = str(uuid.uuid4())
            emulator.webhooks.pending.append(dataclasses.replace(
                d, webhook_id=new_id, headers={**d.headers, "X-Shopify-Webhook-Id": new_id}))
    emulator.flush_webhooks()
    total = inbox_counts(db).get("pending", 0)
    assert total > 1500, total

    worker = app.start_worker()
    wait_until(lambda: inbox_counts(db).get("processed", 0) > 0, 60, "the drain to start", 0.05)
    took = terminate(worker)
    counts = inbox_counts(db)
    assert not counts.get("processing"), f"left leased by the stopped worker: {counts}"
    assert counts.get("pending"), f"the worker drained everything before SIGTERM: {counts}"
    stopped_with = counts["pending"]

    resumed = time.monotonic()
    app.start_worker()
    wait_until(lambda: drained(db), 90, "the next worker to finish the drain", 0.2)
    finished = time.monotonic() - resumed
    verdict = check_invariants(db, [store])
    print(f"\nSIGTERM mid-drain: the worker exited in {took:.1f} s with {stopped_with:,} of "
          f"{total:,} deliveries left pending and none leased; the next worker drained them "
          f"in {finished:.1f} s (start-up included); {verdict.credited} orders credited")


def test_rolling_restart_of_web_and_workers_during_load_loses_nothing(system):
    app, emulator, db = system
    workers = [app.start_worker(), app.start_worker()]
    store = Store(emulator, app.url, SHOP)
    store.install()
    store.enrol(6)

    restarts: dict[str, float] = {}

    def roll() -> None:
        wait_until(lambda: len(store.orders) >= 30, 120, "orders before the restart")
        assert app.web is not None
        down = time.monotonic()
        restarts["web exit"] = terminate(app.web)
        app.start_web()
        restarts["web down"] = time.monotonic() - down
        for i, worker in enumerate(list(workers)):
            restarts[f"worker {i + 1} exit"] = terminate(worker)
            workers[i] = app.start_worker()

    roller = threading.Thread(target=roll)
    roller.start()
    store.shopping(random.Random(20261207), 150, pause=0.03)
    roller.join()
    assert len(restarts) == 4, restarts

    cut = [d for d in emulator.deliveries
           if not d["ok"] and d["error"] and "Connect" not in d["error"]]
    assert not cut, f"requests cut instead of answered: {[d['error'] for d in cut][:3]}"
    refused = sum(1 for d in emulator.deliveries if not d["ok"])
    while unacknowledged(emulator):
        emulator.redeliver_failed()
    after = time.monotonic()
    wait_until(lambda: drained(db), 60, "the inbox to drain (no lease may be needed)", 0.2)
    drained_in = time.monotonic() - after
    with psycopg.connect(libpq(db)) as conn:
        reclaimed = conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE attempts > 1").fetchone()[0]
    verdict = check_invariants(db, [store])
    print(
        "\nrolling restart during load: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in restarts.items())
        + f"; {refused} deliveries refused while the web process was down, all redelivered; "
        f"inbox drained {drained_in:.1f} s after; rows claimed twice: {reclaimed}; "
        f"{verdict.orders} orders, {verdict.credited} credited"
    )
