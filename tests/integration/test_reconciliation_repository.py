"""The reconciliation repository on both backends the app runs on (PostgreSQL, and SQLite in
embedded mode): webhook lag percentiles, the watermark, one running run per shop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.db.reconciliation_repository import SqlAlchemyReconciliationRepository
from adapters.db.tables import metadata, shops, webhook_deliveries
from connector.ports import ReconcileCounts

NOW = datetime(2026, 11, 22, 12, 0, 0, 250_000, tzinfo=UTC)
SHOP = "lag-shop.myshopify.com"


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "postgresql":
        url = request.getfixturevalue("db_url")  # migrated, emptied after the test
        engine = sa.create_engine(url)
    else:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'lag.sqlite3'}")
        metadata.create_all(engine)
    yield engine
    engine.dispose()


def delivery(n: int, shop: str, lag: float | None, received: datetime) -> dict[str, object]:
    return {
        "topic": "orders/updated", "webhook_id": f"w{n}", "shop_domain": shop,
        "triggered_at": received - timedelta(seconds=lag) if lag is not None else None,
        "received_at": received, "body": "{}", "status": "processed", "attempts": 1,
    }


def test_lag_is_the_median_and_worst_of_the_shops_recent_deliveries(engine: sa.Engine) -> None:
    recent = NOW - timedelta(minutes=5)
    rows = [delivery(i, SHOP, lag, recent) for i, lag in enumerate([1.5, 2.5, 3.0, 10.0])]
    rows += [
        delivery(10, "other.myshopify.com", 500.0, recent),  # another shop
        delivery(11, SHOP, 900.0, NOW - timedelta(days=2)),  # outside the window
        delivery(12, SHOP, None, recent),  # no trigger time
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(webhook_deliveries), rows)
    since = NOW - timedelta(hours=24)
    with engine.begin() as conn:
        repo = SqlAlchemyReconciliationRepository(conn, NOW)
        lag = repo.webhook_lag(SHOP, since)
        assert (lag.deliveries, lag.p50_seconds, lag.max_seconds) == (4, 2.75, 10.0)
        conn.execute(sa.insert(webhook_deliveries), [delivery(20, SHOP, 4.0, recent)])
        odd = repo.webhook_lag(SHOP, since)
        assert (odd.deliveries, odd.p50_seconds, odd.max_seconds) == (5, 3.0, 10.0)
        none = repo.webhook_lag("nobody.myshopify.com", since)
        assert (none.deliveries, none.p50_seconds, none.max_seconds) == (0, None, None)


def test_the_watermark_is_the_end_of_the_latest_complete_window(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        shop_id = conn.execute(sa.insert(shops).values(
            domain=SHOP, status="installed", created_at=NOW, updated_at=NOW,
        ).returning(shops.c.id)).scalar_one()
        repo = SqlAlchemyReconciliationRepository(conn, NOW)
        assert repo.watermark(shop_id) is None and repo.last(shop_id) is None
        end = NOW - timedelta(minutes=2)
        first = repo.start(shop_id, NOW - timedelta(hours=1), end, abandoned_before=NOW)
        assert first is not None
        # one running run per shop
        assert repo.start(shop_id, NOW, NOW, abandoned_before=NOW - timedelta(hours=2)) is None
        repo.finish(first, "done", ReconcileCounts(seen=3, applied=2, found_only_here=1))
        assert repo.watermark(shop_id) == end
        later = repo.start(shop_id, end, NOW, abandoned_before=NOW)
        assert later is not None
        repo.finish(later, "failed", ReconcileCounts(seen=1, errors=1), "boom")
        assert repo.watermark(shop_id) == end  # a failed run does not move it
        last = repo.last(shop_id)
        assert last is not None and (last.id, last.status, last.error) == (later, "failed", "boom")
        assert repo.found_since(shop_id, NOW - timedelta(days=7)) == 1
        assert repo.found_since(shop_id, NOW + timedelta(seconds=1)) == 0
