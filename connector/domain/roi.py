"""Return on influence: what the program brought against what it cost, per month, per tier
and per challenge.

- Business value: attributed revenue (what the customer paid for eligible lines, net of
  refunds: the commission base), attributed orders, new customers (first-time buyers), the
  average attributed order, and refunds (attributed orders with a refund, and the rewards
  reversed for them).
- Marketing value (reach): ambassadors with at least one attributed order, distinct codes used,
  and the attributed share of the store's revenue (the same net definition over every order
  the store sent us, test and cancelled orders excluded).
- Content value: posts and reviews approved.
- Cost: reward-ledger entries by form: commissions net of reversals, and bonuses (challenge
  prizes). Payouts by method (gift card, store credit, cash) are a fulfilment matter and show
  up there; the ledger amounts are the cost the program committed to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connector.domain.money import Money


@dataclass(frozen=True)
class RoiOrder:
    """One order of the store in the window, with its attribution (if any)."""

    placed_at: datetime
    store_base: Decimal  # net eligible revenue of the order (0 for test or cancelled)
    ambassador_id: int | None = None
    code: str | None = None
    attributed_base: Decimal = Decimal(0)  # credited revenue (0 when nobody was credited)
    new_customer: bool = False
    refunded: bool = False
    tier_id: int | None = None


@dataclass(frozen=True)
class CostEntry:
    created_at: datetime
    ambassador_id: int
    kind: str  # commission | adjustment | reversal | bonus
    amount: Decimal
    tier_id: int | None = None
    challenge_id: int | None = None  # bonus entries keyed challenge:{id}:prize:{ambassador}


@dataclass
class Figures:
    attributed_revenue: Decimal = Decimal(0)
    attributed_orders: int = 0
    new_customers: int = 0
    refunded_orders: int = 0
    store_revenue: Decimal = Decimal(0)
    ambassadors: set[int] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    approved_content: int = 0
    commissions: Decimal = Decimal(0)
    reversals: Decimal = Decimal(0)
    bonuses: Decimal = Decimal(0)

    def add_order(self, o: RoiOrder) -> None:
        self.store_revenue += o.store_base
        if o.ambassador_id is None:
            return
        self.attributed_orders += 1
        self.attributed_revenue += o.attributed_base
        self.new_customers += 1 if o.new_customer else 0
        self.refunded_orders += 1 if o.refunded else 0
        self.ambassadors.add(o.ambassador_id)
        if o.code:
            self.codes.add(o.code.upper())

    def add_cost(self, e: CostEntry) -> None:
        if e.kind == "bonus":
            self.bonuses += e.amount
        elif e.kind == "reversal":
            self.reversals += e.amount
        else:
            self.commissions += e.amount

    def as_dict(self, currency: str) -> dict[str, Any]:
        def m(value: Decimal) -> str:
            return Money(value, currency).rounded().as_string()

        cost = self.commissions + self.reversals + self.bonuses
        average = (
            self.attributed_revenue / self.attributed_orders if self.attributed_orders else None
        )
        share = (
            (self.attributed_revenue * 100 / self.store_revenue).quantize(
                Decimal("0.1"), rounding=ROUND_HALF_UP
            )
            if self.store_revenue
            else None
        )
        roi = (
            ((self.attributed_revenue - cost) / cost).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            if cost > 0
            else None
        )
        return {
            "business": {
                "attributed_revenue": m(self.attributed_revenue),
                "attributed_orders": self.attributed_orders,
                "new_customers": self.new_customers,
                "average_order": m(average) if average is not None else None,
                "refunded_orders": self.refunded_orders,
                "rewards_reversed": m(-self.reversals),
            },
            "marketing": {
                "ambassadors_active": len(self.ambassadors),
                "codes_used": len(self.codes),
                "store_revenue": m(self.store_revenue),
                "share_of_store_revenue": str(share) if share is not None else None,
            },
            "content": {"approved": self.approved_content},
            "cost": {
                "commissions": m(self.commissions + self.reversals),
                "bonuses": m(self.bonuses),
                "total": m(cost),
            },
            "return_per_unit_cost": str(roi) if roi is not None else None,
        }


def month(at: datetime) -> str:
    return f"{at:%Y-%m}"


def aggregate(
    orders: Iterable[RoiOrder],
    costs: Iterable[CostEntry],
    approved: Iterable[tuple[datetime, int, int | None]],
    *,
    months: Sequence[str],
    currency: str,
    tier_names: dict[int, str],
    challenges: dict[int, str],
) -> dict[str, Any]:
    """The report: totals, per month (every month of the window, empty ones too), per tier
    (the ambassador's tier now; "none" for none) and per challenge (its prizes)."""
    total = Figures()
    by_month = {m: Figures() for m in months}
    by_tier: dict[str, Figures] = {}

    def tier(tid: int | None) -> Figures:
        return by_tier.setdefault(tier_names.get(tid, "none") if tid else "none", Figures())

    for o in orders:
        for f in (total, by_month.get(month(o.placed_at))):
            if f is not None:
                f.add_order(o)
        if o.ambassador_id is not None:
            tier(o.tier_id).add_order(o)
    prizes: dict[int, Decimal] = {}
    for e in costs:
        for f in (total, by_month.get(month(e.created_at)), tier(e.tier_id)):
            if f is not None:
                f.add_cost(e)
        if e.challenge_id is not None:
            prizes[e.challenge_id] = prizes.get(e.challenge_id, Decimal(0)) + e.amount
    for at, _aid, tid in approved:
        for f in (total, by_month.get(month(at)), tier(tid)):
            if f is not None:
                f.approved_content += 1
    return {
        "currency": currency,
        "total": total.as_dict(currency),
        "months": [{"month": m, **by_month[m].as_dict(currency)} for m in months],
        "tiers": [{"tier": name, **f.as_dict(currency)} for name, f in sorted(by_tier.items())],
        "challenges": [
            {
                "challenge_id": cid,
                "name": name,
                "prizes": Money(prizes.get(cid, Decimal(0)), currency).rounded().as_string(),
            }
            for cid, name in sorted(challenges.items())
        ],
    }


def months_between(start: datetime, end: datetime) -> list[str]:
    """Every calendar month from ``start``'s to ``end``'s, inclusive."""
    out = []
    year, mon = start.year, start.month
    while (year, mon) <= (end.year, end.month):
        out.append(f"{year:04d}-{mon:02d}")
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return out
