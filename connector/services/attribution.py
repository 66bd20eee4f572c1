"""Applying order and refund events: snapshot, attribute, book the difference in the ledger.

Guarantees (proved by the property tests in ``tests/unit/test_ledger_properties.py``):
- The ledger of an order equals a function of the order's final known state: replays,
  duplicates and any arrival order of its events give the same entries' sum.
- One writer per order at a time (row lock on the snapshot), so many workers can apply
  events concurrently.
- A refund that arrives before its order is kept and applied when the order arrives.
- Entries are appended, never changed; each carries a deterministic idempotency key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from connector.domain.attribution import Attribution, attribute
from connector.domain.ledger import (
    commission_base,
    plan_entries,
    presentment_reward,
    target_reward,
)
from connector.domain.money import Money
from connector.domain.orders import BadOrder, Order, Refund
from connector.domain.webhooks import Delivery
from connector.ports import AttributionRecord, Clock, LedgerEntry, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    order_id: int
    credited_to: int | None
    entries: int


def apply_order(
    uow: UnitOfWork, clock: Clock, shop_id: int, order: Order, *, source: str = "webhook"
) -> Applied:
    """An order event (create, paid, updated, cancelled) or a reconciled order."""
    stored = uow.orders.lock(shop_id, order.id)  # serialise with other workers on this order
    kept_newer = not uow.orders.save(shop_id, order, source)
    uow.orders.add_refunds(shop_id, order.refunds)
    # The state recompute needs, without reading it back: the newer snapshot, every refund.
    base = stored if kept_newer and stored is not None else order
    # Refunds may have arrived before their order (kept in the refunds table).
    known = stored.refunds if stored is not None else uow.orders.refunds(shop_id, order.id)
    refunds = {r.id: r for r in known} | {r.id: r for r in order.refunds}
    current = replace(base, refunds=tuple(refunds[k] for k in sorted(refunds)))
    return recompute(uow, clock, shop_id, order.id, reason=f"order {order.name}",
                     current=current)


def apply_refund(uow: UnitOfWork, clock: Clock, shop_id: int, refund: Refund) -> Applied | None:
    """A refund event. Kept even if its order has not arrived; applied when it does."""
    uow.orders.add_refunds(shop_id, [refund])
    stored = uow.orders.lock(shop_id, refund.order_id)  # its refunds include this one
    if stored is None:
        return None
    return recompute(uow, clock, shop_id, refund.order_id, reason=f"refund {refund.id}",
                     current=stored)


def recompute(
    uow: UnitOfWork, clock: Clock, shop_id: int, order_id: int, *, reason: str,
    current: Order | None = None,
) -> Applied:
    """Bring the order's attribution record and ledger entries to what its state implies
    (``current``: that state, when the caller already holds it under the order's lock)."""
    order = current if current is not None else uow.orders.get(shop_id, order_id)
    assert order is not None
    settings = uow.program.settings(shop_id)
    previous = uow.ledger.attribution(shop_id, order_id)
    identities = uow.orders.identities(shop_id, [code for code, _ in order.codes])
    if previous is not None and previous.ambassador_id is not None and previous.code:
        # Eligibility by status is judged when the order is first credited: pausing an
        # ambassador later never claws back what they had earned. The rest of the decision
        # stays a function of the order's current state.
        held = identities.get(previous.code)
        if held is not None and held.id == previous.ambassador_id:
            identities[previous.code] = replace(held, active=True)
    returning = settings.new_customers_only and uow.orders.returning_customer(shop_id, order)
    decision = attribute(
        order,
        identities,
        new_customers_only=settings.new_customers_only,
        returning_customer=returning,
    )
    rate = _rate(uow, shop_id, decision, previous, settings.default_commission_rate)
    targets: dict[int, Money] = {}
    if decision.ambassador_id is not None and rate is not None:
        targets[decision.ambassador_id] = target_reward(order, rate)
    booked = uow.ledger.booked(shop_id, order_id)
    planned = plan_entries(
        targets,
        {aid: Money(total, order.currency) for aid, (total, _) in booked.items()},
        order.currency,
        _why(order, reason),
    )
    for entry in planned:
        sequence = booked.get(entry.ambassador_id, (Decimal(0), 0))[1] + 1
        presentment = None
        if entry.ambassador_id == decision.ambassador_id and rate is not None:
            total_pres = presentment_reward(order, rate)
            share = (
                entry.amount.amount / targets[entry.ambassador_id].amount
                if targets[entry.ambassador_id].amount
                else Decimal(0)
            )
            presentment = (total_pres.amount * share).quantize(Decimal("0.01"))
        uow.ledger.append(
            shop_id,
            LedgerEntry(
                ambassador_id=entry.ambassador_id,
                order_id=order_id,
                kind=entry.kind.value,
                amount=entry.amount.amount,
                currency=order.currency,
                presentment_amount=presentment,
                presentment_currency=order.presentment_currency,
                reason=entry.reason,
                idempotency_key=f"{shop_id}:{order_id}:{entry.ambassador_id}:{sequence}",
            ),
        )
    if decision.ambassador_id is not None and order.paid:
        placed = order.created_at or clock.now()
        uow.ledger.hold(
            shop_id, order_id, decision.ambassador_id, placed + timedelta(days=settings.hold_days)
        )
    reward = targets.get(decision.ambassador_id or -1, Money.zero(order.currency))
    credited_base = commission_base(order).shop if decision.credited and order.paid else Decimal(0)
    uow.ledger.save_attribution(
        shop_id,
        AttributionRecord(
            order_id=order_id,
            ambassador_id=decision.ambassador_id,
            code=decision.code,
            rule=decision.rule,
            reason=decision.reason,
            candidates=decision.candidates,
            rate=rate,
            base=credited_base,
            reward=reward.amount,
            currency=order.currency,
            placed_at=order.created_at,
            cancelled=order.cancelled_at is not None,
        ),
    )
    for ambassador_id in (
        {e.ambassador_id for e in planned}
        | ({decision.ambassador_id} if decision.ambassador_id else set())
        | ({previous.ambassador_id} if previous and previous.ambassador_id else set())
    ):
        uow.ledger.refresh_stats(shop_id, ambassador_id, order.currency)
    return Applied(order_id, decision.ambassador_id, len(planned))


def _rate(
    uow: UnitOfWork,
    shop_id: int,
    decision: Attribution,
    previous: AttributionRecord | None,
    default: Decimal,
) -> Decimal | None:
    """The rate of the ambassador's tier when the order was first credited to them."""
    if decision.ambassador_id is None:
        return None
    if (
        previous is not None
        and previous.ambassador_id == decision.ambassador_id
        and (previous.rate is not None)
    ):
        return previous.rate
    ambassador = uow.ambassadors.get(shop_id, decision.ambassador_id)
    tiers = {t.id: t for t in uow.program.tiers(shop_id)}
    if ambassador is not None and ambassador.tier_id in tiers:
        return tiers[ambassador.tier_id].commission_rate
    return default


def _why(order: Order, event: str) -> str:
    if order.cancelled_at is not None:
        return f"{event}: cancelled"
    if order.refunds:
        return f"{event}: {len(order.refunds)} refund(s) applied"
    if not order.paid:
        return f"{event}: not paid"
    return event


# --- webhook handlers ------------------------------------------------------------------------


def handle_order(uow: UnitOfWork, clock: Clock, delivery: Delivery, payload: dict[str, Any]) -> str:
    shop = uow.shops.get(delivery.shop_domain)
    if shop is None or shop.id is None:
        return "ignored: unknown shop"
    try:
        order = Order.from_payload(payload)
    except BadOrder as exc:
        return f"ignored: unreadable order ({exc})"
    applied = apply_order(uow, clock, shop.id, order)
    who = f"ambassador {applied.credited_to}" if applied.credited_to else "nobody"
    return f"order {order.id}: credited to {who}; {applied.entries} ledger entries"


def handle_refund(
    uow: UnitOfWork, clock: Clock, delivery: Delivery, payload: dict[str, Any]
) -> str:
    shop = uow.shops.get(delivery.shop_domain)
    if shop is None or shop.id is None:
        return "ignored: unknown shop"
    try:
        refund = Refund.from_payload(payload)
    except BadOrder as exc:
        return f"ignored: unreadable refund ({exc})"
    applied = apply_refund(uow, clock, shop.id, refund)
    if applied is None:
        return f"refund {refund.id}: kept until order {refund.order_id} arrives"
    return f"refund {refund.id}: {applied.entries} ledger entries"


# --- hold and approval -----------------------------------------------------------------------


def approve_due_rewards(uow_factory: UnitOfWorkFactory, clock: Clock) -> int:
    """Scheduled: rewards whose hold ended become approved (stats follow in the same commit)."""
    approved = 0
    while True:
        with uow_factory() as uow:
            touched = uow.ledger.approve_due(clock.now(), limit=1000)
            for shop_id, ambassador_id in touched:
                uow.ledger.refresh_stats(shop_id, ambassador_id, None)
            uow.commit()
        if not touched:
            return approved
        approved += len(touched)

