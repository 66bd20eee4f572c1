"""Fault injection: Redis wiped (``FLUSHALL`` of a redis-server of the test's own) in the middle
of a run of real orders, twice:

1. while the worker drains and webhooks keep coming: queued jobs, trigger flags, the worker's
   and the scheduler's registrations vanish under them;
2. while the worker is stopped and the inbox holds work with its jobs queued in Redis: after the
   wipe no job knows about those rows; a new worker starts on an empty Redis, and only the
   durable inbox in PostgreSQL plus the sweeper (every 30 s) can bring them back.

Afterwards nothing is lost or doubled (every acknowledged webhook stored once and applied, each
order's ledger equal to the reward of its final state in the emulator). Recovery times printed.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.conftest import API_KEY, API_SECRET, SHOP
from tests.faults.harness import (
    App,
    PrivateRedis,
    Store,
    check_invariants,
    drained,
    free_port,
    inbox_counts,
    private_postgres,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.faults


def test_redis_wiped_mid_run_the_inbox_and_the_sweeper_recover(tmp_path):
    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread

    rng = random.Random(20261204)
    started = time.monotonic()
    redis = PrivateRedis()
    port = free_port()
    emulator = ShopifyEmulator(API_KEY, API_SECRET, app_url=f"http://127.0.0.1:{port}")
    emulator.add_shop(SHOP, currency="USD", name="Fault Shop")
    server, emu_url = serve_in_thread(emulator)
    app: App | None = None
    try:
        with private_postgres() as pg:
            db = pg.create_database("ambassador")
            app = App(db, redis.url, emu_url, port, tmp_path)
            app.start_web()
            worker = app.start_worker()
            store = Store(emulator, app.url, SHOP)
            store.install()
            store.enrol(6)

            # 1. Wiped while the worker drains and webhooks keep arriving.
            wipes = []

            def wipe_midway(n: int) -> None:
                if n in (20, 45):
                    redis.client.flushall()
                    wipes.append(time.monotonic())

            store.shopping(rng, 70, pause=0.02, on_order=wipe_midway)
            wait_until(lambda: drained(db), 90, "the inbox to drain after the first wipes", 0.5)
            first = time.monotonic() - wipes[-1]
            assert worker.poll() is None, f"the worker died with Redis wiped:\n{app.logs('worker')}"

            # 2. Wiped while the inbox holds work whose jobs are queued only in Redis.
            assert stop_process(worker) == 0, app.logs("worker")
            store.shopping(rng, 50)
            waiting = inbox_counts(db).get("pending", 0)
            queued = sum(redis.client.llen(k) for k in redis.client.keys("rq:queue:*"))
            assert waiting > 0 and queued > 0, (waiting, queued)
            redis.client.flushall()
            wiped = time.monotonic()
            app.start_worker()
            wait_until(lambda: drained(db), 90, "the sweeper to find the inbox's rows", 0.5)
            second = time.monotonic() - wiped

            verdict = check_invariants(db, [store])
            print(
                f"\nRedis wiped twice while draining: inbox drained {first:.1f} s after the last "
                f"wipe; wiped with {waiting} deliveries waiting and {queued} jobs queued: drained "
                f"{second:.1f} s later by a new worker's sweeper; {verdict.orders} orders, "
                f"{verdict.credited} credited, {verdict.deliveries} deliveries; "
                f"test took {time.monotonic() - started:.0f} s"
            )
    finally:
        if app is not None:
            app.stop()
        server.shutdown()
        redis.destroy()
