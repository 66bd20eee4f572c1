"""The reward ledger: what an order is worth to its ambassador, and the entries that get the
ledger there from where it is.

The ledger is append-only. For every order, the reward it should carry now is a pure function
of the order's final known state (lines, refunds, cancellation, payment) and of its
attribution (ambassador and the rate fixed when it was first credited). Applying an event
recomputes that target and appends the difference: a commission, a reversal (refund,
cancellation, lost credit) or an adjustment. So replays and reordered webhooks cannot double
anything, and the sum of an order's entries always equals its target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from connector.domain.money import Money
from connector.domain.orders import Order


class EntryKind(StrEnum):
    COMMISSION = "commission"  # first credit of an order
    ADJUSTMENT = "adjustment"  # the order grew (edited up) after its first credit
    REVERSAL = "reversal"  # refund, cancellation, or credit lost
    BONUS = "bonus"  # not tied to an order (a challenge prize): approved and payable at once


@dataclass(frozen=True)
class RewardBase:
    """What the commission is computed on, in shop and presentment currency."""

    shop: Decimal
    presentment: Decimal


def commission_base(order: Order) -> RewardBase:
    """What the customer actually paid for the eligible lines, less what was refunded on them.

    Eligible: every line but gift cards. After discounts; tax and shipping excluded. A refund
    reverses exactly the refunded subtotal of each line (capped at what the line was paid),
    so partial refunds reverse their share and nothing more, with no restock required.
    """
    refunded: dict[int, Decimal] = {}
    for refund in order.refunds:
        for line_id, _quantity, subtotal in refund.lines:
            refunded[line_id] = refunded.get(line_id, Decimal(0)) + subtotal
    shop = presentment = Decimal(0)
    for line in order.lines:
        if line.gift_card or line.paid <= 0:
            continue
        kept = max(line.paid - min(refunded.get(line.id, Decimal(0)), line.paid), Decimal(0))
        shop += kept
        presentment += line.presentment_paid * (kept / line.paid)
    return RewardBase(shop, presentment)


def target_reward(order: Order, rate_percent: Decimal) -> Money:
    """The reward the order should carry now for the credited ambassador."""
    if order.test or order.cancelled_at is not None or not order.paid:
        return Money.zero(order.currency)
    base = commission_base(order)
    return Money(base.shop * rate_percent / 100, order.currency).rounded()


def presentment_reward(order: Order, rate_percent: Decimal) -> Money:
    if order.test or order.cancelled_at is not None or not order.paid:
        return Money.zero(order.presentment_currency)
    base = commission_base(order)
    return Money(base.presentment * rate_percent / 100, order.presentment_currency).rounded()


@dataclass(frozen=True)
class PlannedEntry:
    ambassador_id: int
    kind: EntryKind
    amount: Money
    reason: str


def plan_entries(
    targets: Mapping[int, Money], booked: Mapping[int, Money], currency: str, reason: str
) -> list[PlannedEntry]:
    """Entries that move each ambassador's booked total on this order to its target."""
    planned = []
    for ambassador_id in sorted(set(targets) | set(booked)):
        target = targets.get(ambassador_id, Money.zero(currency))
        current = booked.get(ambassador_id, Money.zero(currency))
        delta = target - current
        if delta.amount == 0:
            continue
        if delta.amount < 0:
            kind = EntryKind.REVERSAL
        elif current.amount == 0:
            kind = EntryKind.COMMISSION
        else:
            kind = EntryKind.ADJUSTMENT
        planned.append(PlannedEntry(ambassador_id, kind, delta, reason))
    return planned
