"""The Shopify Admin GraphQL bucket per shop as last reported (``throttleStatus``), for the
health page. Its own short transactions: called from the GraphQL client, outside any unit of
work, so a reading never joins (or fails) the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from adapters.db.repositories import _insert
from adapters.db.tables import shopify_api_budget

_B = shopify_api_budget.c


@dataclass(frozen=True)
class ShopifyBudgetReading:
    currently_available: float
    maximum_available: float
    restore_rate: float
    read_at: datetime


class ShopifyBudgetStore:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def record(
        self, shop_domain: str, available: float, maximum: float, restore_rate: float, at: datetime
    ) -> None:
        """Upsert the shop's reading (one row per shop; the newest wins)."""
        values = {
            "shop_domain": shop_domain,
            "currently_available": available,
            "maximum_available": maximum,
            "restore_rate": restore_rate,
            "read_at": at,
        }
        with self._engine.begin() as conn:
            stmt = _insert(conn, shopify_api_budget).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[_B.shop_domain],
                    set_={k: v for k, v in values.items() if k != "shop_domain"},
                    where=_B.read_at <= stmt.excluded.read_at,
                )
            )

    def read(self, shop_domain: str) -> ShopifyBudgetReading | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(shopify_api_budget).where(_B.shop_domain == shop_domain)
            ).first()
        if row is None:
            return None
        return ShopifyBudgetReading(
            row.currently_available, row.maximum_available, row.restore_rate, row.read_at
        )
