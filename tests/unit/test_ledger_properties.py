"""Ledger invariants, property-based (Hypothesis), through the real repositories on SQLite.

For any history of an order (versions, refunds, cancellation, payment) delivered in any order,
with duplicates and replays:
- the ledger of the order equals a function of its final state (``target_reward``);
- the sum of an ambassador's entries equals the balance their statistics show;
- every entry has a distinct idempotency key and no order is credited to two ambassadors;
- replaying the whole history changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import StaticPool

from adapters.clock import FakeClock
from adapters.crypto import TokenCipher
from adapters.db.engine import make_engine
from adapters.db.tables import metadata
from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
from connector.domain.ambassadors import Ambassador, AmbassadorStatus, CodeState
from connector.domain.attribution import attribute
from connector.domain.ledger import target_reward
from connector.domain.orders import Order, Refund
from connector.domain.shops import Shop, ShopStatus
from connector.services.attribution import apply_order, apply_refund

KEY = "q1yCY3cJZ9d1qS4rC0qA6GQq1Nq4V2r7HkqK0s4y0mU="
T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
LINES = [(11, "40.00"), (12, "15.50"), (13, "100.00")]


@pytest.fixture(scope="module")
def engine():
    e = make_engine("sqlite://")
    e.pool = StaticPool(e.pool._creator)  # one in-memory database for every connection
    metadata.create_all(e)
    yield e
    e.dispose()


def reset(engine) -> tuple[int, dict[str, int]]:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    clock = FakeClock(T0)
    uow = SqlAlchemyUnitOfWork(engine, TokenCipher(KEY), clock)
    with uow:
        shop = uow.shops.save(Shop(None, "prop.myshopify.com", ShopStatus.INSTALLED))
        ids = {}
        for code, email in (("AMBONE", "one@example.com"), ("AMBTWO", "two@example.com")):
            a = uow.ambassadors.add(Ambassador(None, shop.id, email, AmbassadorStatus.ACTIVE,
                                               first_name=code, code=code,
                                               code_state=CodeState.ACTIVE))
            ids[code] = a.id
        uow.commit()
    return shop.id, ids


def order_payload(version: int, codes: list[tuple[str, str]], quantities: list[int],
                  status: str, cancelled: bool, refunds: list[dict]) -> dict:
    return {
        "id": 5001, "name": "#5001", "currency": "USD", "presentment_currency": "EUR",
        "created_at": T0.isoformat(), "updated_at": (T0 + timedelta(minutes=version)).isoformat(),
        "financial_status": status, "cancelled_at": (T0 + timedelta(hours=1)).isoformat()
        if cancelled else None, "test": False, "email": "buyer@example.com",
        "customer": {"id": 777, "created_at": T0.isoformat()},
        "discount_codes": [{"code": c, "amount": a, "type": "fixed_amount"} for c, a in codes],
        "line_items": [
            {"id": line_id, "quantity": q, "price": price,
             "price_set": {"shop_money": {"amount": price}, "presentment_money": {
                 "amount": str(Decimal(price) * Decimal("0.9"))}},
             "discount_allocations": [{"amount": "1.00"}] if codes and q else []}
            for (line_id, price), q in zip(LINES, quantities, strict=True)],
        "refunds": refunds,
    }


def refund_payload(refund_id: int, line_id: int, quantity: int, amount: str) -> dict:
    return {"id": refund_id, "order_id": 5001, "created_at": T0.isoformat(),
            "refund_line_items": [{"line_item_id": line_id, "quantity": quantity,
                                   "subtotal_set": {"shop_money": {"amount": amount}}}]}


codes_st = st.lists(st.tuples(st.sampled_from(["AMBONE", "ambtwo", "OTHER", "AmbOne"]),
                              st.sampled_from(["1.00", "5.00", "5.00", "12.00"])),
                    max_size=3, unique_by=lambda t: t[0].upper())
version_st = st.tuples(codes_st, st.lists(st.integers(0, 3), min_size=3, max_size=3),
                       st.sampled_from(["pending", "paid", "paid", "partially_refunded"]),
                       st.booleans())
refund_st = st.tuples(st.sampled_from([11, 12, 13]), st.integers(1, 2),
                      st.sampled_from(["5.00", "14.50", "39.00", "250.00"]))


@st.composite
def histories(draw):
    versions = draw(st.lists(version_st, min_size=1, max_size=4))
    refunds = draw(st.lists(refund_st, max_size=3))
    events = [("order", i, v) for i, v in enumerate(versions)]
    events += [("refund", 900 + i, r) for i, r in enumerate(refunds)]
    # arrival: any order, some events twice (duplicates and replays)
    arrival = draw(st.permutations(events))
    dupes = draw(st.lists(st.sampled_from(events), max_size=3))
    return versions, refunds, list(arrival) + dupes


def build(event, refunds_so_far=()):
    kind, n, data = event
    if kind == "order":
        codes, quantities, status, cancelled = data
        return Order.from_payload(order_payload(n, codes, quantities, status, cancelled, []))
    line_id, qty, amount = data
    return Refund.from_payload(refund_payload(n, line_id, qty, amount))


def apply(engine, shop_id, event):
    uow = SqlAlchemyUnitOfWork(engine, TokenCipher(KEY), FakeClock(T0))
    with uow:
        item = build(event)
        if isinstance(item, Order):
            apply_order(uow, FakeClock(T0), shop_id, item)
        else:
            apply_refund(uow, FakeClock(T0), shop_id, item)
        uow.commit()


def final_state(versions, refunds) -> Order:
    """The model: the latest version (by updated_at) plus every refund."""
    latest = max(range(len(versions)), key=lambda i: i)
    codes, quantities, status, cancelled = versions[latest]
    order = Order.from_payload(order_payload(latest, codes, quantities, status, cancelled, []))
    rs = tuple(Refund.from_payload(refund_payload(900 + i, *r)) for i, r in enumerate(refunds))
    return Order(**{**order.__dict__, "refunds": rs})


def ledger(engine) -> dict[int, Decimal]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT ambassador_id, sum(amount) FROM ledger_entries GROUP BY ambassador_id"))
        return {aid: Decimal(str(total)).quantize(Decimal("0.0001")) for aid, total in rows}


@example(history=(  # a refund before its order: found once, kept as a regression case
    [([("AMBONE", "1.00")], [1, 0, 0], "paid", False)], [(11, 1, "5.00")],
    [("refund", 900, (11, 1, "5.00")),
     ("order", 0, ([("AMBONE", "1.00")], [1, 0, 0], "paid", False))]))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_the_ledger_is_a_function_of_the_final_order_state(engine, history):
    versions, refunds, arrival = history
    shop_id, ids = reset(engine)
    for event in arrival:
        apply(engine, shop_id, event)

    final = final_state(versions, refunds)
    by_code = {}
    from connector.domain.attribution import AmbassadorIdentity

    for code, aid in ids.items():
        by_code[code] = AmbassadorIdentity(aid, code, True)
    decision = attribute(final, by_code)
    expected = {decision.ambassador_id: target_reward(final, Decimal(10)).amount} \
        if decision.ambassador_id else {}
    booked = {aid: total for aid, total in ledger(engine).items() if total != 0}
    assert booked == {aid: v for aid, v in expected.items() if v != 0}

    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT idempotency_key FROM ledger_entries")).scalars().all()
        stats = dict(conn.execute(sa.text(
            "SELECT ambassador_id, balance FROM ambassador_stats")).all())
        credited = conn.execute(sa.text(
            "SELECT count(*) FROM order_attributions WHERE ambassador_id IS NOT NULL")).scalar()
    assert len(keys) == len(set(keys))
    assert credited <= 1
    for aid, total in ledger(engine).items():
        assert Decimal(str(stats[aid])).quantize(total) == total  # stats never out of step

    before = ledger(engine)
    for event in arrival:  # a full replay of everything changes nothing
        apply(engine, shop_id, event)
    assert ledger(engine) == before


@settings(max_examples=200, deadline=None)
@given(st.lists(refund_st, max_size=6))
def test_refunds_never_reverse_more_than_was_credited(refunds):
    base = Order.from_payload(order_payload(0, [("AMBONE", "5.00")], [2, 1, 1], "paid", False,
                                            []))
    rs = tuple(Refund.from_payload(refund_payload(900 + i, *r)) for i, r in enumerate(refunds))
    refunded = Order(**{**base.__dict__, "refunds": rs})
    full = target_reward(base, Decimal(10)).amount
    left = target_reward(refunded, Decimal(10)).amount
    assert Decimal(0) <= left <= full
