"""``/api/v1/health/webhooks``: is the shop's webhook intake keeping up, and what did
reconciliation have to catch? Registered on the API blueprint; every figure is the signed-in
shop's own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import g, jsonify

from admin_ui.api import bp, container

LAG_WINDOW = timedelta(hours=24)
FOUND_WINDOW = timedelta(days=7)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@bp.get("/health/webhooks")
def webhook_health() -> Any:
    """Inbox backlog, webhook lag over the last 24 hours, the last reconciliation run, and the
    orders that only reconciliation found in the last 7 days (each one a missed webhook)."""
    c = container()
    now = c.clock.now()
    with c.uow() as uow:
        inbox = uow.inbox.stats(now, g.shop.domain)
        lag = uow.reconciliation.webhook_lag(g.shop.domain, now - LAG_WINDOW)
        run = uow.reconciliation.last(g.shop.id)
        complete_through = uow.reconciliation.watermark(g.shop.id)
        found = uow.reconciliation.found_since(g.shop.id, now - FOUND_WINDOW)
    oldest = inbox.oldest_pending_at
    return jsonify(
        {
            "inbox": {
                "pending": inbox.pending,
                "processing": inbox.processing,
                "failed": inbox.failed,
                "oldest_pending_at": _iso(oldest),
                "oldest_pending_age_seconds": round(max(0.0, (now - oldest).total_seconds()), 3)
                if oldest
                else None,
                "last_received_at": _iso(inbox.last_received_at),
            },
            "lag": {
                "window_hours": int(LAG_WINDOW.total_seconds() // 3600),
                "deliveries": lag.deliveries,
                "p50_seconds": lag.p50_seconds,
                "max_seconds": lag.max_seconds,
            },
            "reconciliation": {
                "last_run": {
                    "id": run.id,
                    "status": run.status,
                    "started_at": _iso(run.started_at),
                    "finished_at": _iso(run.finished_at),
                    "window_start": _iso(run.window_start),
                    "window_end": _iso(run.window_end),
                    "seen": run.counts.seen,
                    "applied": run.counts.applied,
                    "found_only_by_reconciliation": run.counts.found_only_here,
                    "stale": run.counts.stale,
                    "errors": run.counts.errors,
                    "error": run.error,
                }
                if run
                else None,
                "complete_through": _iso(complete_through),
                "found_only_by_reconciliation_7d": found,
            },
        }
    )
