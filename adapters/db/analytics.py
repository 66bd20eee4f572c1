"""Read-only figures for the admin's dashboard and health page (a read model: plain queries
over the tables the core writes, never a write). Every function is scoped to one shop.

Grouping happens in the database (one row per day, per tier, per ambassador), so the cost does
not grow with the number of orders a page shows; days are UTC days on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from adapters.db.tables import (
    ambassador_stats,
    ambassadors,
    order_attributions,
    salesforce_contacts,
    tiers,
    webhook_deliveries,
)

_OA = order_attributions.c
_A = ambassadors.c
_S = ambassador_stats.c
_T = tiers.c
_D = webhook_deliveries.c


@dataclass(frozen=True)
class DayFigures:
    day: date
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class TierCount:
    tier_id: int | None
    name: str | None
    position: int | None
    ambassadors: int


@dataclass(frozen=True)
class TopAmbassador:
    id: int
    first_name: str
    last_name: str
    email: str
    code: str | None
    orders: int
    revenue: Decimal
    currency: str


@dataclass(frozen=True)
class FailedDelivery:
    id: int
    topic: str
    webhook_id: str
    attempts: int
    last_error: str | None
    received_at: datetime | None


def _utc_day(conn: sa.Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)  # SQLite stores UTC text already


def credited_by_day(conn: sa.Connection, shop_id: int, since: datetime) -> list[DayFigures]:
    """Orders credited to an ambassador (not cancelled) and the revenue credited (net of
    refunds: ``base``), per UTC day of the order, from ``since``; days without orders omitted."""
    day = _utc_day(conn, _OA.placed_at).label("day")
    rows = conn.execute(
        sa.select(day, sa.func.count(), sa.func.coalesce(sa.func.sum(_OA.base), 0))
        .where(
            _OA.shop_id == shop_id,
            _OA.ambassador_id.is_not(None),
            _OA.cancelled.is_(False),
            _OA.placed_at >= since,
        )
        .group_by(day)
        .order_by(day)
    )
    out = []
    for value, count, revenue in rows:
        parsed = value if isinstance(value, date) else date.fromisoformat(str(value))
        out.append(DayFigures(parsed, int(count), Decimal(str(revenue))))
    return out


def active_by_tier(conn: sa.Connection, shop_id: int) -> list[TierCount]:
    """Active ambassadors per tier (``tier_id`` None: no tier), tiers in their order."""
    rows = conn.execute(
        sa.select(_A.tier_id, _T.name, _T.position, sa.func.count())
        .select_from(ambassadors.outerjoin(tiers, _T.id == _A.tier_id))
        .where(_A.shop_id == shop_id, _A.status == "active")
        .group_by(_A.tier_id, _T.name, _T.position)
    )
    counts = [TierCount(r[0], r[1], r[2], int(r[3])) for r in rows]
    return sorted(counts, key=lambda t: (t.position is None, t.position or 0, t.name or ""))


def top_ambassadors(conn: sa.Connection, shop_id: int, limit: int = 10) -> list[TopAmbassador]:
    """The ambassadors with the most credited revenue (ties: more orders, then the older)."""
    rows = conn.execute(
        sa.select(
            _A.id, _A.first_name, _A.last_name, _A.email, _A.code,
            _S.attributed_orders, _S.attributed_revenue, _S.currency,
        )
        .select_from(ambassadors.join(ambassador_stats, _S.ambassador_id == _A.id))
        .where(_A.shop_id == shop_id, _S.shop_id == shop_id, _S.attributed_orders > 0)
        .order_by(_S.attributed_revenue.desc(), _S.attributed_orders.desc(), _A.id)
        .limit(limit)
    )
    return [
        TopAmbassador(r[0], r[1], r[2], r[3], r[4], int(r[5]), Decimal(str(r[6])), r[7])
        for r in rows
    ]


def failed_deliveries(
    conn: sa.Connection, shop_domain: str, limit: int = 20
) -> list[FailedDelivery]:
    """The shop's parked webhook deliveries (status ``failed``), newest first."""
    rows = conn.execute(
        sa.select(_D.id, _D.topic, _D.webhook_id, _D.attempts, _D.last_error, _D.received_at)
        .where(_D.shop_domain == shop_domain, _D.status == "failed")
        .order_by(_D.id.desc())
        .limit(limit)
    )
    return [FailedDelivery(r[0], r[1], r[2], int(r[3] or 0), r[4], r[5]) for r in rows]


@dataclass(frozen=True)
class ContactSync:
    state: str  # synced | retry | parked
    contact_id: str | None
    synced_at: datetime | None
    error_code: str | None
    error_message: str | None
    retry_at: datetime | None
    note: str | None


def contact_sync(conn: sa.Connection, shop_id: int, ambassador_id: int) -> ContactSync | None:
    """The ambassador's Salesforce Contact link and its last outcome; None: never synced."""
    t = salesforce_contacts.c
    row = conn.execute(
        sa.select(t.state, t.contact_id, t.synced_at, t.error_code, t.error_message, t.retry_at,
                  t.note)
        .where(t.shop_id == shop_id, t.ambassador_id == ambassador_id)
    ).first()
    return ContactSync(*row) if row else None
