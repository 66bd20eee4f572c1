"""Reconciliation runs and the webhook-health figures (``ReconciliationRepository``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from adapters.db.repositories import _as_utc
from adapters.db.tables import reconciliation_runs, webhook_deliveries
from connector.ports import ReconcileCounts, ReconciliationRun, WebhookLag

_R = reconciliation_runs.c
_D = webhook_deliveries.c

#: Runs are kept this long: the health figures look back 7 days.
KEEP_RUNS = timedelta(days=30)


def _figures(counts: ReconcileCounts) -> dict[str, int]:
    return {
        "seen": counts.seen,
        "applied": counts.applied,
        "found_only_by_reconciliation": counts.found_only_here,
        "stale": counts.stale,
        "errors": counts.errors,
    }


class SqlAlchemyReconciliationRepository:
    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self._conn = conn
        self._now = now

    def start(
        self,
        shop_id: int,
        window_start: datetime,
        window_end: datetime,
        *,
        abandoned_before: datetime,
    ) -> int | None:
        self._conn.execute(
            sa.update(reconciliation_runs)
            .where(
                _R.shop_id == shop_id,
                _R.status == "running",
                _R.started_at < abandoned_before,
            )
            .values(status="failed", finished_at=self._now, error="interrupted")
        )
        running = self._conn.execute(
            sa.select(_R.id).where(_R.shop_id == shop_id, _R.status == "running").limit(1)
        ).first()
        if running is not None:
            return None
        self._conn.execute(
            sa.delete(reconciliation_runs).where(
                _R.shop_id == shop_id, _R.started_at < self._now - KEEP_RUNS
            )
        )
        return int(
            self._conn.execute(
                sa.insert(reconciliation_runs)
                .values(
                    shop_id=shop_id,
                    status="running",
                    window_start=window_start,
                    window_end=window_end,
                    started_at=self._now,
                    **_figures(ReconcileCounts()),
                )
                .returning(_R.id)
            ).scalar_one()
        )

    def progress(self, run_id: int, counts: ReconcileCounts) -> None:
        self._conn.execute(
            sa.update(reconciliation_runs).where(_R.id == run_id).values(**_figures(counts))
        )

    def finish(
        self, run_id: int, status: str, counts: ReconcileCounts, error: str | None = None
    ) -> None:
        self._conn.execute(
            sa.update(reconciliation_runs)
            .where(_R.id == run_id)
            .values(status=status, finished_at=self._now, error=error, **_figures(counts))
        )

    def watermark(self, shop_id: int) -> datetime | None:
        return _as_utc(
            self._conn.execute(
                sa.select(sa.func.max(_R.window_end)).where(
                    _R.shop_id == shop_id, _R.status == "done"
                )
            ).scalar()
        )

    def last(self, shop_id: int) -> ReconciliationRun | None:
        row = self._conn.execute(
            sa.select(reconciliation_runs)
            .where(_R.shop_id == shop_id)
            .order_by(_R.started_at.desc(), _R.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return ReconciliationRun(
            id=row.id,
            shop_id=row.shop_id,
            status=row.status,
            window_start=row.window_start,
            window_end=row.window_end,
            started_at=row.started_at,
            finished_at=row.finished_at,
            counts=ReconcileCounts(
                seen=row.seen,
                applied=row.applied,
                found_only_here=row.found_only_by_reconciliation,
                stale=row.stale,
                errors=row.errors,
            ),
            error=row.error,
        )

    def found_since(self, shop_id: int, since: datetime) -> int:
        return int(
            self._conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(_R.found_only_by_reconciliation), 0)).where(
                    _R.shop_id == shop_id, _R.started_at >= since
                )
            ).scalar_one()
        )

    def webhook_lag(self, shop_domain: str, since: datetime) -> WebhookLag:
        scope = [
            _D.shop_domain == shop_domain,
            _D.received_at >= since,
            _D.triggered_at.is_not(None),
        ]
        if self._conn.dialect.name == "postgresql":
            lag: Any = sa.extract("epoch", _D.received_at - _D.triggered_at)
            row = self._conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.percentile_cont(0.5).within_group(lag),
                    sa.func.max(lag),
                ).where(*scope)
            ).one()
            count, p50, worst = int(row[0]), row[1], row[2]
        else:
            # SQLite has no interval type nor percentiles: seconds from Julian days, and the
            # median by position (the mean of the middle two, as percentile_cont gives).
            lag = (sa.func.julianday(_D.received_at) - sa.func.julianday(_D.triggered_at)) * 86400.0
            count, worst = self._conn.execute(
                sa.select(sa.func.count(), sa.func.max(lag)).where(*scope)
            ).one()
            count = int(count)
            p50 = None
            if count:
                middle = [
                    float(v)
                    for v in self._conn.execute(
                        sa.select(lag)
                        .where(*scope)
                        .order_by(lag)
                        .limit(1 if count % 2 else 2)
                        .offset((count - 1) // 2)
                    ).scalars()
                ]
                p50 = sum(middle) / len(middle)
        return WebhookLag(
            deliveries=count,
            p50_seconds=_seconds(p50) if count else None,
            max_seconds=_seconds(worst) if count else None,
        )


def _seconds(value: Any) -> float | None:
    """Rounded to milliseconds; a negative lag (our clock behind Shopify's) reads as 0."""
    if value is None:
        return None
    return max(0.0, round(float(value), 3))
