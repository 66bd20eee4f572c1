"""Fault injection at delivery: what Shopify's at-least-once, unordered webhooks do to the app
under a run of real orders (checkouts, partial refunds, cancellations in the emulator), with
the app as processes (gunicorn, the RQ worker):

* 30 % of deliveries come twice (half as a retry with the same webhook id, half as a new
  delivery of the same event with a new webhook id), and the whole stream arrives shuffled;
* 10 % are replayed "hours later": sent again at the end, after every newer version, with
  their original (hours-old) ``X-Shopify-Triggered-At``;
* 5 % of order and refund deliveries never arrive; ``ambassador reconcile`` (a real process,
  reading the orders through Admin GraphQL) recovers them.

After the duplicates and replays, every order none of whose webhooks was dropped has the
ledger its final state gives; after reconciliation every order has. The expected ledger is
computed independently, from the final orders in the emulator, with the domain's pure rules.
"""

from __future__ import annotations

import dataclasses
import random
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import SHOP
from tests.faults.harness import (
    VENV_BIN,
    Store,
    booked_ledger,
    check_invariants,
    drained,
    expected_ledger,
    running_system,
    wait_until,
)

pytestmark = pytest.mark.faults

ORDERS = 150


def test_duplicates_replays_and_dropped_webhooks_leave_the_ledger_a_function_of_final_orders(
    tmp_path,
):
    from adapters.shopify.emulator.webhooks import triggered_at

    rng = random.Random(20261206)
    started = time.monotonic()
    with running_system(tmp_path) as system:
        app, emulator, db = system.app, system.emulator, system.db
        app.start_worker()
        store = Store(emulator, app.url, SHOP)
        store.install()
        store.enrol(6)

        emulator.webhook_mode = "manual"
        store.shopping(rng, ORDERS)
        sent = list(emulator.webhooks.pending)
        emulator.webhooks.pending.clear()

        stream, replays, dropped_orders = [], [], set()
        counts = {"duplicate": 0, "replay": 0, "dropped": 0}
        hours_ago = triggered_at(datetime.now(UTC) - timedelta(hours=3))
        for delivery in sent:
            order_id = _order_of(delivery)
            if order_id is not None and rng.random() < 0.05:
                counts["dropped"] += 1
                dropped_orders.add(order_id)
                continue
            stream.append(delivery)
            if rng.random() < 0.30:
                counts["duplicate"] += 1
                if rng.random() < 0.5:
                    stream.append(dataclasses.replace(delivery, attempt=2))
                else:
                    new_id = str(uuid.uuid4())
                    headers = {**delivery.headers, "X-Shopify-Webhook-Id": new_id}
                    stream.append(dataclasses.replace(delivery, webhook_id=new_id,
                                                      headers=headers))
            if rng.random() < 0.10:
                counts["replay"] += 1
                new_id = str(uuid.uuid4())
                headers = {**delivery.headers, "X-Shopify-Webhook-Id": new_id,
                           "X-Shopify-Triggered-At": hours_ago}
                replays.append(dataclasses.replace(delivery, webhook_id=new_id,
                                                   headers=headers))
        # Unordered: each delivery lands up to ~20 places from where it was sent.
        keyed = sorted(enumerate(stream), key=lambda p: p[0] + rng.uniform(0, 20))
        emulator.webhooks.pending.extend(d for _, d in keyed)
        emulator.flush_webhooks()
        emulator.webhooks.pending.extend(replays)
        emulator.flush_webhooks()
        wait_until(lambda: drained(db), 120, "the inbox to drain", 0.5)

        expected = expected_ledger(store)
        booked = booked_ledger(db, SHOP)
        wrong = {k[0] for k in set(expected) | set(booked)
                 if expected.get(k) != booked.get(k)}
        unexplained = wrong - dropped_orders
        assert not unexplained, f"orders wrong without a drop: {unexplained}"
        assert wrong, "no dropped webhook changed a ledger: the drop proved nothing"

        before = time.monotonic()
        result = subprocess.run(
            [str(VENV_BIN / "ambassador"), "reconcile", "--shop", SHOP],
            env=app.env, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: drained(db), 60, "the inbox to drain", 0.5)
        reconciled = time.monotonic() - before
        verdict = check_invariants(db, [store])
        print(
            f"\n{len(sent)} webhooks sent for {ORDERS} orders: {counts['duplicate']} "
            f"delivered twice, {counts['replay']} replayed hours later, "
            f"{counts['dropped']} dropped ({len(dropped_orders)} orders, {len(wrong)} of "
            f"them with a wrong ledger before reconciliation); `ambassador reconcile` "
            f"recovered them in {reconciled:.1f} s; {verdict.credited} orders credited, "
            f"ledger = f(final orders); test took {time.monotonic() - started:.0f} s"
        )


def _order_of(delivery) -> int | None:
    import json

    topic = delivery.topic
    if not topic.startswith(("orders/", "refunds/")):
        return None
    payload = json.loads(delivery.body)
    return int(payload["order_id"] if topic == "refunds/create" else payload["id"])
