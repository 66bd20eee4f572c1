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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connector.domain.attribution import AmbassadorIdentity, attribute
from connector.domain.ledger import (
    commission_base,
    plan_entries,
    presentment_reward,
    target_reward,
)
from connector.domain.money import Money
from connector.domain.orders import BadOrder, Order, Refund, supersedes
from connector.domain.webhooks import Delivery, Topic
from connector.ports import AttributionRecord, Clock, LedgerEntry, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    order_id: int
    credited_to: int | None
    entries: int


OrderEvent = Order | Refund


def apply_order(
    uow: UnitOfWork, clock: Clock, shop_id: int, order: Order, *, source: str = "webhook"
) -> Applied:
    """An order event (create, paid, updated, cancelled) or a reconciled order."""
    return apply_events(uow, clock, shop_id, [order], source=source)[order.id]


def apply_refund(uow: UnitOfWork, clock: Clock, shop_id: int, refund: Refund) -> Applied | None:
    """A refund event. Kept even if its order has not arrived; applied when it does."""
    return apply_events(uow, clock, shop_id, [refund]).get(refund.order_id)


def apply_events(
    uow: UnitOfWork,
    clock: Clock,
    shop_id: int,
    events: Sequence[OrderEvent],
    *,
    source: str = "webhook",
) -> dict[int, Applied]:
    """Apply one shop's order and refund events, given in arrival order, as one step.

    The outcome equals applying them one at a time: each order ends at its newest version
    (``updated_at``; a tie goes to the later event) with every refund known for it, and its
    ledger at what that state implies. Only the steps in between are skipped. The number of
    statements does not grow with the number of events (batch reads, multi-row writes).
    Returns the outcome per order; an order not known yet (a refund that came first) has
    none: its refunds are kept and applied when it arrives.
    """
    order_ids = {e.id if isinstance(e, Order) else e.order_id for e in events}
    stored = uow.orders.lock_many(shop_id, order_ids)  # one writer per order from here on
    arrived: dict[int, Order] = {}  # the newest version of an order, when it is an event
    refunds: dict[int, dict[int, Refund]] = {
        order_id: {r.id: r for r in order.refunds} for order_id, order in stored.items()
    }
    first_seen = sorted({e.id for e in events if isinstance(e, Order) and e.id not in stored})
    for order_id, kept in uow.orders.refunds(shop_id, first_seen).items():
        refunds[order_id] = {r.id: r for r in kept}  # refunds that came before their order
    incoming: list[Refund] = []
    reasons: dict[int, str] = {}
    last_event: dict[int, int] = {}  # order id -> position of its last event in the batch
    # Each order's known versions by position (-1: stored before the batch), for the
    # self-referral signals an order would have seen had the events been applied one by one.
    versions: dict[int, list[tuple[int, Order]]] = {k: [(-1, v)] for k, v in stored.items()}
    for position, event in enumerate(events):
        if isinstance(event, Refund):
            incoming.append(event)
            reasons[event.order_id] = f"refund {event.id}"
            last_event[event.order_id] = position
            continue
        current = arrived.get(event.id) or stored.get(event.id)
        if current is None or supersedes(event, current):
            arrived[event.id] = event
            versions.setdefault(event.id, []).append((position, event))
        incoming.extend(event.refunds)  # kept even when the version itself is stale
        reasons[event.id] = f"order {event.name}"
        last_event[event.id] = position
    for refund in incoming:
        refunds.setdefault(refund.order_id, {})[refund.id] = refund
    uow.orders.save_many(shop_id, list(arrived.values()), source)
    uow.orders.add_refunds(shop_id, incoming)
    states = {}
    for order_id in sorted(order_ids):
        base = arrived.get(order_id) or stored.get(order_id)
        if base is not None:
            known = refunds.get(order_id, {})
            states[order_id] = replace(base, refunds=tuple(known[k] for k in sorted(known)))
    return _recompute(uow, clock, shop_id, states, reasons, versions, last_event)


def _recompute(
    uow: UnitOfWork,
    clock: Clock,
    shop_id: int,
    states: Mapping[int, Order],
    reasons: Mapping[int, str],
    versions: Mapping[int, list[tuple[int, Order]]],
    last_event: Mapping[int, int],
) -> dict[int, Applied]:
    """Bring each order's attribution record and ledger entries to what its state implies
    (``states``: each order's current state, read under its lock)."""
    if not states:
        return {}
    settings = uow.program.settings(shop_id)
    previous = uow.ledger.attributions(shop_id, states)
    identities = uow.orders.identities(
        shop_id,
        sorted({code for order in states.values() for code, _ in order.codes}),
        exclude_orders=sorted(versions),  # their signals come from ``versions``, by position
    )
    booked = uow.ledger.booked(shop_id, states)
    tiers: dict[int, Decimal] | None = None  # tier id -> rate, read when first needed
    entries: list[LedgerEntry] = []
    holds: list[tuple[int, int, datetime]] = []
    records: list[AttributionRecord] = []
    touched: dict[int, str] = {}  # ambassador id -> currency
    applied: dict[int, Applied] = {}
    # The batch's orders by buyer (any version), to find an ambassador's own orders at once.
    by_buyer: dict[object, dict[int, list[tuple[int, Order]]]] = {}
    for other_id, history in versions.items():
        for _, version in history:
            for key in (("customer", version.customer_id), ("email", version.email)):
                if key[1] is not None:
                    by_buyer.setdefault(key, {})[other_id] = history

    def own(holder: AmbassadorIdentity) -> list[list[tuple[int, Order]]]:
        """The batch's orders that are (in some version) the ambassador's own."""
        mine = {
            **by_buyer.get(("customer", holder.customer_id), {}),
            **by_buyer.get(("email", holder.email), {}),
        }
        return [mine[k] for k in sorted(mine)]

    for order_id, order in states.items():
        before = previous.get(order_id)
        by_code = _as_seen_at(identities, order, own, last_event[order_id])
        if before is not None and before.ambassador_id is not None and before.code:
            # Eligibility by status is judged when the order is first credited: pausing an
            # ambassador later never claws back what they had earned. The rest of the decision
            # stays a function of the order's current state.
            held = by_code.get(before.code)
            if held is not None and held.id == before.ambassador_id and not held.active:
                by_code = {**by_code, before.code: replace(held, active=True)}
        returning = settings.new_customers_only and uow.orders.returning_customer(shop_id, order)
        decision = attribute(
            order,
            by_code,
            new_customers_only=settings.new_customers_only,
            returning_customer=returning,
        )
        rate: Decimal | None = None
        if decision.ambassador_id is not None:
            if (
                before is not None
                and before.ambassador_id == decision.ambassador_id
                and before.rate is not None
            ):
                rate = before.rate  # the rate of the tier when the order was first credited
            else:
                if tiers is None:
                    tiers = {
                        t.id: t.commission_rate
                        for t in uow.program.tiers(shop_id)
                        if t.id is not None
                    }
                tier_id = by_code[decision.code or ""].tier_id
                rate = (
                    tiers.get(tier_id, settings.default_commission_rate)
                    if tier_id
                    else (settings.default_commission_rate)
                )
        targets: dict[int, Money] = {}
        if decision.ambassador_id is not None and rate is not None:
            targets[decision.ambassador_id] = target_reward(order, rate)
        already = booked.get(order_id, {})
        planned = plan_entries(
            targets,
            {aid: Money(total, order.currency) for aid, (total, _) in already.items()},
            order.currency,
            _why(order, reasons.get(order_id, f"order {order.name}")),
        )
        for entry in planned:
            sequence = already.get(entry.ambassador_id, (Decimal(0), 0))[1] + 1
            presentment = None
            if entry.ambassador_id == decision.ambassador_id and rate is not None:
                total_pres = presentment_reward(order, rate)
                target = targets[entry.ambassador_id].amount
                share = entry.amount.amount / target if target else Decimal(0)
                presentment = (total_pres.amount * share).quantize(Decimal("0.01"))
            entries.append(
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
                )
            )
        if decision.ambassador_id is not None and order.paid:
            placed = order.created_at or clock.now()
            holds.append(
                (order_id, decision.ambassador_id, placed + timedelta(days=settings.hold_days))
            )
        reward = targets.get(decision.ambassador_id or -1, Money.zero(order.currency))
        credited = decision.credited and order.paid
        records.append(
            AttributionRecord(
                order_id=order_id,
                ambassador_id=decision.ambassador_id,
                code=decision.code,
                rule=decision.rule,
                reason=decision.reason,
                candidates=decision.candidates,
                rate=rate,
                base=commission_base(order).shop if credited else Decimal(0),
                reward=reward.amount,
                currency=order.currency,
                placed_at=order.created_at,
                cancelled=order.cancelled_at is not None,
            )
        )
        for ambassador_id in (
            {e.ambassador_id for e in planned}
            | ({decision.ambassador_id} if decision.ambassador_id else set())
            | ({before.ambassador_id} if before and before.ambassador_id else set())
        ):
            touched[ambassador_id] = order.currency
        applied[order_id] = Applied(order_id, decision.ambassador_id, len(planned))
    uow.ledger.append(shop_id, entries)
    uow.ledger.hold(shop_id, holds)
    uow.ledger.save_attributions(shop_id, records)
    for ambassador_id, currency in touched.items():
        uow.ledger.refresh_stats(shop_id, ambassador_id, currency)
    return applied


def _as_seen_at(
    identities: Mapping[str, AmbassadorIdentity],
    order: Order,
    own: Callable[[AmbassadorIdentity], list[list[tuple[int, Order]]]],
    position: int,
) -> Mapping[str, AmbassadorIdentity]:
    """The order's candidate ambassadors with the phones and addresses of their own orders in
    this batch (``own``: each such order's versions by position) as known when the order's
    last event is applied: one at a time, an order sees the orders stored before it, not
    those arriving after it in the same batch."""
    seen: dict[str, AmbassadorIdentity] = {}
    for code, _ in order.codes:
        holder = identities.get(code.upper())
        if holder is None or code.upper() in seen:
            continue
        phones, addresses = set(holder.phones), set(holder.addresses)
        for history in own(holder):
            known = [v for at, v in history if at <= position]
            if known and _belongs_to(known[-1], holder):  # the version stored at that point
                phones.update([known[-1].phone] if known[-1].phone else [])
                addresses.update([known[-1].address] if known[-1].address else [])
        seen[code.upper()] = replace(
            holder, phones=frozenset(phones), addresses=frozenset(addresses)
        )
    return seen


def _belongs_to(order: Order, holder: AmbassadorIdentity) -> bool:
    return (holder.customer_id is not None and order.customer_id == holder.customer_id) or (
        holder.email is not None and order.email == holder.email
    )


def _why(order: Order, event: str) -> str:
    if order.cancelled_at is not None:
        return f"{event}: cancelled"
    if order.refunds:
        return f"{event}: {len(order.refunds)} refund(s) applied"
    if not order.paid:
        return f"{event}: not paid"
    return event


# --- webhook handlers ------------------------------------------------------------------------


def apply_deliveries(
    uow: UnitOfWork, clock: Clock, items: Sequence[tuple[Delivery, dict[str, Any]]]
) -> list[str]:
    """Order and refund webhooks (any shops, in arrival order) applied together, one
    :func:`apply_events` per shop; returns each delivery's note, in order."""
    notes: list[str] = [""] * len(items)
    by_shop: dict[int, list[tuple[int, OrderEvent]]] = {}
    shop_ids: dict[str, int | None] = {}
    for index, (delivery, payload) in enumerate(items):
        if delivery.shop_domain not in shop_ids:
            shop = uow.shops.get(delivery.shop_domain)
            shop_ids[delivery.shop_domain] = shop.id if shop is not None else None
        shop_id = shop_ids[delivery.shop_domain]
        if shop_id is None:
            notes[index] = "ignored: unknown shop"
            continue
        event: OrderEvent
        try:
            if delivery.topic == Topic.REFUNDS_CREATE.value:
                event = Refund.from_payload(payload)
            else:
                event = Order.from_payload(payload)
        except BadOrder as exc:
            what = "refund" if delivery.topic == Topic.REFUNDS_CREATE.value else "order"
            notes[index] = f"ignored: unreadable {what} ({exc})"
            continue
        by_shop.setdefault(shop_id, []).append((index, event))
    for shop_id, indexed in by_shop.items():
        outcome = apply_events(uow, clock, shop_id, [event for _, event in indexed])
        for index, event in indexed:
            if isinstance(event, Refund):
                done = outcome.get(event.order_id)
                notes[index] = (
                    f"refund {event.id}: kept until order {event.order_id} arrives"
                    if done is None
                    else f"refund {event.id}: {done.entries} ledger entries"
                )
            else:
                done = outcome[event.id]
                who = f"ambassador {done.credited_to}" if done.credited_to else "nobody"
                notes[index] = f"order {event.id}: credited to {who}; {done.entries} ledger entries"
    return notes


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
