"""Tiers: named levels with thresholds over a rolling window, promotion and demotion with grace.

Rules (stated, and tested):
- A tier's thresholds are all required; a threshold left empty is not required. The entry
  tier (lowest position) usually has none.
- An ambassador qualifies for the highest tier whose thresholds their results meet.
- Promotion is immediate. Demotion waits ``grace_days`` from the first evaluation that found
  the ambassador below their tier; results that recover in the meantime cancel it.
- A manually set tier (``tier_locked``) is never changed by evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum


@dataclass(frozen=True)
class Tier:
    id: int | None
    name: str
    position: int
    commission_rate: Decimal
    min_revenue: Decimal | None = None
    min_orders: int | None = None
    min_new_customers: int | None = None
    perks: tuple[str, ...] = ()

    def met_by(self, results: Results) -> bool:
        return (
            (self.min_revenue is None or results.revenue >= self.min_revenue)
            and (self.min_orders is None or results.orders >= self.min_orders)
            and (self.min_new_customers is None or results.new_customers >= self.min_new_customers)
        )


@dataclass(frozen=True)
class Results:
    """An ambassador's results over the tier window."""

    revenue: Decimal = Decimal(0)
    orders: int = 0
    new_customers: int = 0


class Move(StrEnum):
    UP = "up"
    DOWN = "down"
    STAY = "stay"
    GRACE = "grace"  # below the tier, demotion pending


@dataclass(frozen=True)
class Decision:
    move: Move
    tier_id: int | None
    demotion_pending_since: datetime | None


def qualifying_tier(tiers: Sequence[Tier], results: Results) -> Tier | None:
    best = None
    for tier in sorted(tiers, key=lambda t: t.position):
        if tier.met_by(results):
            best = tier
    return best


def decide(
    tiers: Sequence[Tier],
    current_tier_id: int | None,
    results: Results,
    now: datetime,
    *,
    demotion_pending_since: datetime | None,
    grace: timedelta,
    locked: bool = False,
) -> Decision:
    """What evaluation does to one ambassador now."""
    if locked or not tiers:
        return Decision(Move.STAY, current_tier_id, None)
    by_id = {t.id: t for t in tiers}
    current = by_id.get(current_tier_id)
    target = qualifying_tier(tiers, results)
    if current is None:
        return Decision(Move.UP if target else Move.STAY, target.id if target else None, None)
    if target is not None and target.position > current.position:
        return Decision(Move.UP, target.id, None)
    if target is not None and target.position == current.position:
        return Decision(Move.STAY, current.id, None)
    since = demotion_pending_since or now
    if now - since >= grace:
        return Decision(Move.DOWN, target.id if target else None, None)
    return Decision(Move.GRACE, current.id, since)


@dataclass(frozen=True)
class WhatIf:
    up: int
    down: int
    same: int
    moves: tuple[tuple[int, int | None, int | None], ...]  # (ambassador id, from tier, to tier)


def what_if(
    proposed: Sequence[Tier],
    people: Sequence[tuple[int, int | None, Results]],
    current_tiers: Sequence[Tier],
) -> WhatIf:
    """Preview of a tier change: where each ambassador would land, ignoring grace (the preview
    answers "with these thresholds, who qualifies for what"). Tiers are compared by position,
    so renamed or re-created tiers compare sensibly."""
    position = {t.id: t.position for t in current_tiers}
    up = down = same = 0
    moves = []
    for ambassador_id, tier_id, results in people:
        target = qualifying_tier(proposed, results)
        before = position.get(tier_id, -1)
        after = target.position if target else -1
        if after > before:
            up += 1
        elif after < before:
            down += 1
        else:
            same += 1
            continue
        moves.append((ambassador_id, tier_id, target.id if target else None))
    return WhatIf(up, down, same, tuple(moves))
