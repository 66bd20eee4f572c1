"""Program-level use cases: settings, tiers and their what-if, candidates among customers,
bulk enrolment with progress, customer tags."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connector.domain.ambassadors import AmbassadorStatus
from connector.domain.program import ProgramSettings, SettingsInvalid
from connector.domain.shops import Shop
from connector.domain.tiers import Results, Tier, WhatIf, what_if
from connector.ports import (
    Clock,
    CustomerSummary,
    DiscountPlatform,
    JobQueue,
    PlatformError,
    UnitOfWork,
    UnitOfWorkFactory,
)
from connector.services.ambassadors import ProgramError, enrol_customer

log = logging.getLogger(__name__)

TokenFor = Callable[[str], str]


def installed_shops(uow_factory: UnitOfWorkFactory) -> list[str]:
    with uow_factory() as uow:
        return uow.shops.installed_domains()


def update_settings(uow: UnitOfWork, shop: Shop, changes: dict[str, Any]) -> ProgramSettings:
    assert shop.id is not None
    with uow:
        current = uow.program.settings(shop.id)
        try:
            updated = ProgramSettings.from_dict(changes, base=current)
        except SettingsInvalid as exc:
            raise ProgramError("invalid_setting", str(exc)) from None
        uow.program.save_settings(shop.id, updated)
        uow.commit()
    return updated


# --- tiers -------------------------------------------------------------------------------


def parse_tier(data: dict[str, Any], tier_id: int | None = None) -> Tier:
    """A tier from API input; raises :class:`ProgramError` naming the bad field."""

    def dec(name: str, *, required: bool = False) -> Decimal | None:
        value = data.get(name)
        if value in (None, ""):
            if required:
                raise ProgramError("invalid_tier", f"{name} is required")
            return None
        if isinstance(value, bool | float):
            raise ProgramError("invalid_tier", f"{name}: give decimals as strings")
        try:
            result = Decimal(str(value))
        except ArithmeticError:
            raise ProgramError("invalid_tier", f"{name} must be a decimal number") from None
        if not result.is_finite() or result < 0:
            raise ProgramError("invalid_tier", f"{name} must be a non-negative number")
        return result

    def count(name: str) -> int | None:
        value = data.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ProgramError("invalid_tier", f"{name} must be a non-negative integer")
        return value

    name = str(data.get("name") or "").strip()
    if not name or len(name) > 80:
        raise ProgramError("invalid_tier", "name: 1 to 80 characters")
    position = data.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= 100:
        raise ProgramError("invalid_tier", "position must be an integer from 0 to 100")
    rate = dec("commission_rate", required=True)
    assert rate is not None
    if rate > 100:
        raise ProgramError("invalid_tier", "commission_rate is a percentage (0 to 100)")
    perks = data.get("perks") or []
    if (
        not isinstance(perks, list)
        or not all(isinstance(p, str) and len(p) <= 200 for p in perks)
        or len(perks) > 20
    ):
        raise ProgramError("invalid_tier", "perks: a list of up to 20 short texts")
    return Tier(
        tier_id,
        name,
        position,
        rate,
        dec("min_revenue"),
        count("min_orders"),
        count("min_new_customers"),
        tuple(p.strip() for p in perks),
    )


def save_tier(uow: UnitOfWork, shop: Shop, tier: Tier) -> Tier:
    assert shop.id is not None
    with uow:
        existing = uow.program.tiers(shop.id)
        if tier.id is not None and tier.id not in {t.id for t in existing}:
            raise ProgramError("not_found", "no such tier", 404)
        if any(t.name.lower() == tier.name.lower() and t.id != tier.id for t in existing):
            raise ProgramError("duplicate_tier", f"a tier named {tier.name!r} exists", 409)
        if any(t.position == tier.position and t.id != tier.id for t in existing):
            raise ProgramError("duplicate_position", "another tier has this position", 409)
        saved = uow.program.save_tier(shop.id, tier)
        uow.commit()
    return saved


def preview_tiers(
    uow: UnitOfWork,
    shop: Shop,
    proposed: Sequence[Tier],
    results_for: Callable[[int, list[int]], dict[int, Results]],
) -> WhatIf:
    """ "With these thresholds, 12 move up and 3 move down": computed, nothing saved."""
    assert shop.id is not None
    with uow:
        current = uow.program.tiers(shop.id)
        people = uow.ambassadors.tier_positions(shop.id)
    results = results_for(shop.id, [p[0] for p in people])
    return what_if(
        proposed, [(aid, tier_id, results.get(aid, Results())) for aid, tier_id in people], current
    )


# --- candidates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    customer: CustomerSummary
    score: float
    already_ambassador: bool


def rank_customers(
    customers: Sequence[CustomerSummary], now: datetime
) -> list[tuple[float, CustomerSummary]]:
    """Score customers as ambassador candidates: spend, order count, recency, repeat purchase.

    Each component is the customer's rank among these customers scaled to 0–1 (robust to a
    few huge spenders), weighted 40/25/20/15; a customer without an email cannot be enrolled
    and is left out. Ties are broken by customer id, so the ranking is stable.
    """
    pool = [c for c in customers if c.email]
    if not pool:
        return []

    def percentile(values: list[float]) -> list[float]:
        order = sorted(range(len(values)), key=lambda i: values[i])
        ranks = [0.0] * len(values)
        for position, index in enumerate(order):
            ranks[index] = position / max(len(values) - 1, 1)
        return ranks

    spend = percentile([float(c.amount_spent) for c in pool])
    orders = percentile([float(c.orders) for c in pool])
    recency = percentile(
        [-(now - c.last_order_at).total_seconds() if c.last_order_at else -1e12 for c in pool]
    )
    repeat = [1.0 if c.orders >= 2 else 0.0 for c in pool]
    scored = [
        (round(0.40 * s + 0.25 * o + 0.20 * r + 0.15 * p, 4), c)
        for s, o, r, p, c in zip(spend, orders, recency, repeat, pool, strict=True)
    ]
    return sorted(scored, key=lambda pair: (-pair[0], pair[1].id))


def find_candidates(
    uow: UnitOfWork,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    clock: Clock,
    shop: Shop,
    *,
    limit: int = 50,
    query: str | None = None,
    scan: int = 2500,
) -> list[Candidate]:
    """The store's best customers who are not ambassadors yet (``scan`` customers with orders
    are read, 250 per GraphQL page, paced by the throttle status)."""
    assert shop.id is not None
    token = token_for(shop.domain)
    seen: list[CustomerSummary] = []
    cursor = None
    search = "orders_count:>0" + (f" {query}" if query else "")  # only people who bought
    while len(seen) < scan:
        page = discounts.search_customers(shop.domain, token, search, cursor, first=100)
        seen.extend(page.customers)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    ranked = rank_customers(seen, clock.now())
    with uow:
        enrolled = uow.ambassadors.enrolled_customers(shop.id, [c.id for _, c in ranked])
    out = [Candidate(c, score, c.id in enrolled) for score, c in ranked]
    return [c for c in out if not c.already_ambassador][:limit]


def enrol_customers(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    jobs: JobQueue,
    clock: Clock,
    shop_domain: str,
    run_id: int,
    customer_ids: list[int],
    actor: str,
) -> int:
    """Bulk enrolment as a job, with progress in the task run (and a per-customer report)."""
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
    if shop is None or shop.id is None:
        return 0
    token = token_for(shop_domain)
    report: dict[str, Any] = {"enrolled": [], "existing": [], "rejected": []}
    for customer_id in customer_ids:
        ok = False
        try:
            customer = discounts.get_customer(shop_domain, token, customer_id)
            result = enrol_customer(
                uow_factory(),
                jobs,
                clock,
                shop,
                customer,
                customer_id=customer_id,
                source="invite",
                actor=actor,
            )
            report["enrolled" if result.created else "existing"].append(
                {"customer_id": customer_id, "ambassador_id": result.ambassador.id}
            )
            ok = True
        except ProgramError as exc:
            report["rejected"].append(
                {"customer_id": customer_id, "code": exc.code, "reason": exc.message}
            )
        except PlatformError as exc:
            report["rejected"].append(
                {"customer_id": customer_id, "code": "shopify_error", "reason": str(exc)}
            )
        with uow_factory() as uow:
            uow.task_runs.advance(run_id, done=1 if ok else 0, failed=0 if ok else 1)
            uow.commit()
    with uow_factory() as uow:
        uow.task_runs.finish(run_id, "done", report)
        uow.commit()
    return len(report["enrolled"])


def sync_customer_tags(
    uow_factory: UnitOfWorkFactory,
    discounts: DiscountPlatform,
    token_for: TokenFor,
    clock: Clock,
    shop_domain: str,
) -> int:
    """Tag active and paused ambassadors' customers in Shopify; untag removed ones."""
    with uow_factory() as uow:
        shop = uow.shops.get(shop_domain)
        if shop is None or shop.id is None:
            return 0
        shop_id = shop.id
        tag = uow.program.settings(shop_id).customer_tag
        work = uow.ambassadors.tags_to_sync(shop_id, limit=500)
    token = token_for(shop_domain)
    done = 0
    for ambassador_id, customer_id, status, tagged in work:
        want = status in (AmbassadorStatus.ACTIVE.value, AmbassadorStatus.PAUSED.value)
        if want != tagged:
            discounts.tag_customer(shop_domain, token, customer_id, tag, add=want)
        with uow_factory() as uow:
            uow.ambassadors.mark_tagged(shop_id, ambassador_id, want)
            uow.commit()
        done += 1
    return done

