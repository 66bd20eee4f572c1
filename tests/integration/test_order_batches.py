"""Order and refund webhooks applied in runs (the set-based path) on real PostgreSQL: a poison
delivery inside a run, and several workers draining overlapping orders at once."""

from __future__ import annotations

import json
import random
import threading
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from connector.domain.ambassadors import Ambassador, AmbassadorStatus, CodeState
from connector.domain.attribution import AmbassadorIdentity, attribute
from connector.domain.ledger import target_reward
from connector.domain.orders import Order, Refund
from connector.domain.webhooks import IncomingWebhook
from connector.services import inbox
from tests.conftest import SHOP, install_shop
from tests.order_payloads import order_payload, refund_payload


def enrol(container, shop_id: int) -> dict[str, int]:
    ids = {}
    with container.uow() as uow:
        for code in ("AMBONE", "AMBTWO"):
            added = uow.ambassadors.add(
                Ambassador(None, shop_id, f"{code.lower()}@example.com", AmbassadorStatus.ACTIVE,
                           first_name=code, code=code, code_state=CodeState.ACTIVE)
            )
            ids[code] = added.id
        uow.commit()
    return ids


def send(container, deliveries: list[tuple[str, dict]]) -> None:
    with container.uow() as uow:
        for topic, body in deliveries:
            uow.inbox.add(
                IncomingWebhook(topic, str(uuid.uuid4()), SHOP, json.dumps(body), "2026-07",
                                None, None),
                container.clock.now(),
            )
        uow.commit()


def booked(container) -> dict[int, dict[int, Decimal]]:
    with container.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT order_id, ambassador_id, sum(amount) FROM ledger_entries"
            " GROUP BY order_id, ambassador_id")).all()
    out: dict[int, dict[int, Decimal]] = {}
    for order_id, ambassador_id, total in rows:
        if total:
            out.setdefault(order_id, {})[ambassador_id] = Decimal(total).quantize(Decimal("0.01"))
    return out


def expected(final: Order, ambassadors: dict[str, int]) -> dict[int, Decimal]:
    by_code = {c: AmbassadorIdentity(a, c, True) for c, a in ambassadors.items()}
    decision = attribute(final, by_code)
    reward = target_reward(final, Decimal(10)).amount if decision.ambassador_id else Decimal(0)
    return {decision.ambassador_id: reward} if reward else {}


def test_a_poison_delivery_in_a_run_is_parked_alone_and_the_rest_apply(container):
    shop = install_shop(container)
    ambassadors = enrol(container, shop.id)
    good = [("orders/create", order_payload(6000 + i, 1,
                                            ([("AmbOne", "5.00")], [1, 1, 0], "paid", False)))
            for i in range(20)]
    poison = order_payload(6999, 1, ([("AMBONE", "5.00")], [1, 0, 0], "paid", False))
    poison["discount_codes"] = [5]  # not an object: the handler raises, not a BadOrder
    send(container, [*good[:10], ("orders/paid", poison), *good[10:]])

    result = inbox.process_inbox(container.uow, container.handlers, container.clock)

    assert (result.processed, result.failed) == (20, 1)
    ledger = booked(container)
    assert set(ledger) == {6000 + i for i in range(20)}  # every good order, once
    one = ambassadors["AMBONE"]
    assert all(set(v) == {one} for v in ledger.values())
    with container.engine.connect() as conn:
        status, error = conn.execute(sa.text(
            "SELECT status, last_error FROM webhook_deliveries WHERE order_id IS NULL"
            " AND status <> 'processed'")).one()
        balance = conn.execute(sa.text(
            "SELECT balance FROM ambassador_stats WHERE ambassador_id = :a"), {"a": one}).scalar()
    assert status == "pending" and "AttributeError" in error  # retried later, then parked
    assert Decimal(balance) == sum(v[one] for v in ledger.values())


def test_four_workers_on_overlapping_orders_lose_nothing_and_double_nothing(container):
    shop = install_shop(container)
    ambassadors = enrol(container, shop.id)
    rng = random.Random(7)
    codes = [[("AMBONE", "5.00")], [("ambtwo", "5.00"), ("AMBONE", "1.00")], [], [("OTHER", "2")]]
    finals: dict[int, Order] = {}
    deliveries: list[tuple[str, dict]] = []
    refund_id = 80_000
    for order_id in range(7000, 7040):
        versions = [(rng.choice(codes), [rng.randint(0, 3) for _ in range(3)],
                     rng.choice(["pending", "paid", "paid"]), rng.random() < 0.15)
                    for _ in range(rng.randint(1, 4))]
        refunds = []
        for _ in range(rng.randint(0, 2)):
            refund_id += 1
            refunds.append(refund_payload(order_id, refund_id, (
                rng.choice([11, 12, 13]), 1, rng.choice(["5.00", "14.50", "250.00"]))))
        bodies = [("orders/updated", order_payload(order_id, n + 1, v))
                  for n, v in enumerate(versions)]
        bodies += [("refunds/create", r) for r in refunds]
        deliveries += bodies + rng.sample(bodies, k=min(2, len(bodies)))  # some twice
        final = Order.from_payload(order_payload(order_id, len(versions), versions[-1]))
        finals[order_id] = Order(**{**final.__dict__, "refunds": tuple(
            Refund.from_payload(r) for r in refunds)})
    rng.shuffle(deliveries)  # any arrival order: refunds before orders, stale versions last
    send(container, deliveries)

    results = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append(inbox.process_inbox(container.uow, container.handlers, container.clock,
                                           batch_size=15))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(r.failed for r in results) == 0, [e for r in results for e in r.errors]
    assert sum(r.processed for r in results) == len(deliveries)
    assert sum(r.batches for r in results) > 4  # the work really was shared
    ledger = booked(container)
    for order_id, final in finals.items():
        assert ledger.get(order_id, {}) == expected(final, ambassadors), order_id
    with container.engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT idempotency_key FROM ledger_entries")).scalars().all()
        balances = dict(conn.execute(sa.text(
            "SELECT ambassador_id, balance FROM ambassador_stats")).all())
    assert len(keys) == len(set(keys))
    for ambassador_id in ambassadors.values():
        total = sum((v.get(ambassador_id, Decimal(0)) for v in ledger.values()), Decimal(0))
        assert Decimal(balances.get(ambassador_id, 0)) == total


def test_a_same_second_stale_version_cannot_undo_a_cancellation(container):
    shop = install_shop(container)
    enrol(container, shop.id)
    paid = ([("AMBONE", "5.00")], [1, 0, 0], "paid", False)
    cancelled = ([("AMBONE", "5.00")], [1, 0, 0], "paid", True)
    send(container, [("orders/create", order_payload(6100, 1, paid))])
    inbox.process_inbox(container.uow, container.handlers, container.clock)
    assert booked(container)[6100]  # credited
    # Two versions with the same updated_at (one-second precision): the cancellation, then
    # the earlier state delivered late.
    send(container, [("orders/cancelled", order_payload(6100, 2, cancelled))])
    inbox.process_inbox(container.uow, container.handlers, container.clock)
    send(container, [("orders/updated", order_payload(6100, 2, paid))])
    inbox.process_inbox(container.uow, container.handlers, container.clock)
    assert 6100 not in booked(container)  # reversed, and it stays reversed
    with container.uow() as uow:
        assert uow.ledger.attribution(shop.id, 6100).cancelled


@pytest.mark.parametrize("own_first", [True, False])
def test_self_referral_signals_are_those_one_at_a_time_would_have_seen(container, own_first):
    """In one batch, the ambassador's own order (phone P) and a friend's order with the same
    phone and the ambassador's code: the friend's order is a self-referral only if the
    ambassador's own order came first, exactly as when applied one by one."""
    shop = install_shop(container)
    ambassadors = enrol(container, shop.id)
    own = order_payload(6201, 1, ([], [1, 0, 0], "paid", False))
    own.update(email="ambone@example.com", phone="+15550001111")
    friend = order_payload(6202, 1, ([("AMBONE", "5.00")], [1, 0, 0], "paid", False))
    friend.update(email="friend@example.com", phone="+15550001111")
    friend["customer"] = {"id": 8888, "created_at": friend["created_at"]}
    pair = [("orders/create", own), ("orders/create", friend)]
    send(container, pair if own_first else pair[::-1])
    result = inbox.process_inbox(container.uow, container.handlers, container.clock)
    assert result.processed == 2 and result.batches == 1  # one run, the set-based path
    with container.uow() as uow:
        record = uow.ledger.attribution(shop.id, 6202)
    if own_first:
        assert record.ambassador_id is None and record.reason == "self_referral_phone"
    else:
        assert record.ambassador_id == ambassadors["AMBONE"]


def test_two_transactions_crediting_one_ambassador_keep_the_statistics_exact(container):
    """Each transaction recomputes the ambassador's statistics from the ledger just before it
    commits; two at once must not write a sum missing the other's entries (the later one
    waits for the earlier to commit, then reads its entries)."""
    from connector.ports import LedgerEntry

    shop = install_shop(container)
    ambassador = enrol(container, shop.id)["AMBONE"]

    def credit(uow, order_id: int, amount: str) -> None:
        uow.ledger.append(shop.id, [LedgerEntry(
            ambassador, None, "bonus", Decimal(amount), "USD", None, None, "test",
            f"race:{order_id}")])
        uow.ledger.refresh_stats(shop.id, ambassador, "USD")

    first = container.uow()
    with first:
        credit(first, 1, "10.00")
        first.ledger.flush()  # statistics written, not committed yet
        second_done = threading.Event()

        def second() -> None:
            with container.uow() as uow:
                credit(uow, 2, "5.00")
                uow.commit()
            second_done.set()

        worker = threading.Thread(target=second)
        worker.start()
        second_done.wait(1.0)  # with the lock it waits for the first commit
        first.commit()
    worker.join(10)
    assert not worker.is_alive()
    with container.engine.connect() as conn:
        balance = conn.execute(
            sa.text("SELECT balance FROM ambassador_stats WHERE ambassador_id = :a"),
            {"a": ambassador}).scalar_one()
        total = conn.execute(
            sa.text("SELECT sum(amount) FROM ledger_entries WHERE ambassador_id = :a"),
            {"a": ambassador}).scalar_one()
    assert Decimal(total) == Decimal("15.00")
    assert Decimal(balance) == Decimal(total)
