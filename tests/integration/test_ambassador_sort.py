"""The ambassadors list sorted by every key, in both directions, paged by its keyset cursor
through the real API on PostgreSQL: the pages put together are exactly the Python-sorted list
(ties broken by id; no statistics or score below every value), so no row is repeated or
missed, whatever the page size, ties and filters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.db.tables import ambassador_stats, ambassadors, engagement_scores
from connector.ports import AMBASSADOR_SORTS, ENGAGEMENT_BANDS
from tests.conftest import install_shop
from tests.tokens import session_token

NOW = datetime(2026, 12, 1, tzinfo=UTC)
# Few distinct values, so ties (the hard case for a keyset) are common.
names = st.text(alphabet="abZ ", max_size=2)
row = st.fixed_dictionaries(
    {
        "first": names,
        "last": names,
        "orders": st.none() | st.integers(0, 3),
        "revenue": st.none() | st.sampled_from(["0", "9.99", "10", "10.0001", "250.5"]),
        "score": st.none() | st.sampled_from(["0", "12.5", "60", "99.9"]),
    }
)


def _band(score: str) -> str:
    value = Decimal(score)
    return "engaged" if value >= 60 else "marginal" if value >= 25 else "not engaged"


def _store(container: Any, shop_id: int, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with container.engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE ambassadors, ambassador_stats, engagement_scores RESTART IDENTITY CASCADE"
        )
        stored = []
        for i, r in enumerate(rows):
            aid = conn.execute(
                sa.insert(ambassadors)
                .values(
                    shop_id=shop_id,
                    email=f"a{i}@example.com",
                    first_name=r["first"],
                    last_name=r["last"],
                    status="active",
                    source="manual",
                    social={},
                    created_at=NOW,
                    updated_at=NOW,
                )
                .returning(ambassadors.c.id)
            ).scalar_one()
            if r["orders"] is not None or r["revenue"] is not None:
                zero = Decimal(0)
                conn.execute(
                    sa.insert(ambassador_stats).values(
                        ambassador_id=aid,
                        shop_id=shop_id,
                        attributed_orders=r["orders"] or 0,
                        attributed_revenue=Decimal(r["revenue"] or 0),
                        currency="USD",
                        pending=zero,
                        approved=zero,
                        paid=zero,
                        reversed=zero,
                        balance=zero,
                        updated_at=NOW,
                    )
                )
            if r["score"] is not None:
                conn.execute(
                    sa.insert(engagement_scores).values(
                        ambassador_id=aid,
                        shop_id=shop_id,
                        score=Decimal(r["score"]),
                        band=_band(r["score"]),
                        components={},
                        computed_at=NOW,
                    )
                )
            stored.append({**r, "id": aid})
    return stored


def _key(r: dict[str, Any], key: str) -> tuple[Any, ...]:
    """The documented order: without statistics (or a score) below every value; then id."""
    credited = r["orders"] is not None or r["revenue"] is not None  # has a statistics row
    values: tuple[Any, ...] = {
        "created": (),
        "name": (r["first"], r["last"]),
        "orders": (1, r["orders"] or 0) if credited else (0, 0),
        "revenue": (1, Decimal(r["revenue"] or 0)) if credited else (0, 0),
        "engagement": (1, Decimal(r["score"])) if r["score"] is not None else (0, 0),
    }[key]
    return (*values, r["id"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(row, max_size=14),
    key=st.sampled_from(AMBASSADOR_SORTS),
    descending=st.booleans(),
    limit=st.integers(1, 5),
    band=st.none() | st.sampled_from(ENGAGEMENT_BANDS),
)
def test_keyset_pages_equal_the_sorted_list(client, container, rows, key, descending, limit, band):
    shop = install_shop(container) if not hasattr(container, "_sort_shop") else container._sort_shop
    container._sort_shop = shop
    stored = _store(container, shop.id, rows)
    sort = f"-{key}" if descending else key
    expected = [
        r["id"]
        for r in sorted(stored, key=lambda r: _key(r, key), reverse=descending)
        if band is None or (_band(r["score"]) if r["score"] else "not engaged") == band
    ]
    headers = {"Authorization": f"Bearer {session_token()}"}
    seen: list[int] = []
    cursor = None
    for _ in range(len(stored) + 2):
        query = {"sort": sort, "limit": limit, **({"band": band} if band else {})}
        if cursor:
            query["cursor"] = cursor
        response = client.get("/api/v1/ambassadors", query_string=query, headers=headers)
        assert response.status_code == 200, response.get_json()
        data = response.get_json()
        assert len(data["items"]) <= limit
        seen += [a["id"] for a in data["items"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
