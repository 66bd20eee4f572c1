"""Return on influence over a window of calendar months (see :mod:`connector.domain.roi`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connector.domain.challenges import Metric
from connector.domain.money import Money
from connector.domain.roi import aggregate, months_between
from connector.domain.shops import Shop
from connector.ports import UnitOfWork
from connector.services.ambassadors import ProgramError

MAX_MONTHS = 24


def parse_month(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ProgramError(f"invalid_{name}", f"{name}: a month as YYYY-MM") from None


def _next_month(at: datetime) -> datetime:
    return at.replace(year=at.year + 1, month=1) if at.month == 12 else at.replace(
        month=at.month + 1
    )


def report(
    uow: UnitOfWork, now: datetime, shop: Shop, start: str | None, end: str | None
) -> dict[str, Any]:
    """``start``..``end`` (YYYY-MM, inclusive; default: the last 12 months to this one)."""
    assert shop.id is not None
    last = parse_month(end, "to") or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = parse_month(start, "from")
    if first is None:
        first = last
        for _ in range(11):
            previous_year, previous_month = (
                (first.year - 1, 12) if first.month == 1 else (first.year, first.month - 1)
            )
            first = first.replace(year=previous_year, month=previous_month)
    months = months_between(first, last)
    if not months:
        raise ProgramError("invalid_range", "from must not be after to")
    if len(months) > MAX_MONTHS:
        raise ProgramError("invalid_range", f"at most {MAX_MONTHS} months at a time")
    until = _next_month(last)
    currency = shop.currency or "USD"
    with uow:
        orders, costs, approved = uow.engagement.roi_inputs(shop.id, first, until)
        tier_names = {t.id: t.name for t in uow.program.tiers(shop.id) if t.id is not None}
        challenges = [
            c
            for c in uow.challenges.search(shop.id)
            if c.starts_at < until and c.ends_at > first
        ]
        per_challenge = []
        for c in challenges:
            # The participants' revenue inside the challenge's time box.
            standings = uow.challenges.standings(replace(c, metric=Metric.REVENUE))
            per_challenge.append(
                (c, len(standings), sum((s.value for s in standings), Decimal(0)))
            )
    result = aggregate(
        orders,
        costs,
        approved,
        months=months,
        currency=currency,
        tier_names=tier_names,
        challenges={c.id: c.name for c in challenges if c.id is not None},
    )
    extra = {
        c.id: {
            "participants": n,
            "participants_revenue": Money(revenue, currency).rounded().as_string(),
            "metric": c.metric.value,
            "starts_at": c.starts_at.isoformat(),
            "ends_at": c.ends_at.isoformat(),
        }
        for c, n, revenue in per_challenge
    }
    result["challenges"] = [{**x, **extra[x["challenge_id"]]} for x in result["challenges"]]
    result["from"], result["to"] = months[0], months[-1]
    return result
