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

from tests.conftest import SHOP
from tests.faults.harness import (
    Store,
    check_invariants,
    drained,
    inbox_counts,
    running_system,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.faults


def test_redis_wiped_mid_run_the_inbox_and_the_sweeper_recover(tmp_path):
    rng = random.Random(20261204)
    started = time.monotonic()
    with running_system(tmp_path) as system:
        app, emulator, redis, db = system.app, system.emulator, system.redis, system.db
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
