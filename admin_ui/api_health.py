"""``/api/v1/health/...``: is the shop's webhook intake keeping up, and what did reconciliation
have to catch? How much of its Shopify API bucket is in use; which of its background jobs
failed, and retrying them. Registered on the API blueprint; every figure is the signed-in
shop's own."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from flask import g, jsonify
from redis.exceptions import RedisError

from adapters.db.api_budget import ShopifyBudgetStore
from admin_ui.api import ApiError, bp, container

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
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


@bp.get("/health/shopify-budget")
def shopify_budget() -> Any:
    """The shop's Admin GraphQL bucket as the last response reported it (``throttleStatus``,
    recorded at most every 5 s per process): points in use, available, the maximum, the
    restore rate, and when it was read. ``budget`` is null before the first call."""
    c = container()
    reading = ShopifyBudgetStore(c.engine).read(g.shop.domain)
    if reading is None:
        return jsonify({"budget": None})
    maximum = reading.maximum_available
    available = max(0.0, min(reading.currently_available, maximum))
    age = (c.clock.now() - reading.read_at).total_seconds()
    return jsonify(
        {
            "budget": {
                "currently_available": available,
                "maximum_available": maximum,
                "used": round(maximum - available, 1),
                "restore_rate": reading.restore_rate,
                "read_at": _iso(reading.read_at),
                "age_seconds": round(max(0.0, age), 1),
            }
        }
    )


@bp.get("/health/jobs/failed")
def failed_jobs() -> Any:
    """This shop's background jobs that failed after their retries, newest first (at most 50),
    each with a one-line error (no stack trace, secrets redacted)."""
    c = container()
    mode = "rq" if c.redis is not None else "in-process"
    try:
        items = c.jobs.failed_jobs(g.shop.domain)
    except RedisError:
        return jsonify({"mode": "unavailable", "items": []})
    return jsonify(
        {
            "mode": mode,
            "items": [
                {
                    "id": f.id,
                    "job": f.job,
                    "queue": f.queue,
                    "failed_at": _iso(f.failed_at),
                    "error": f.error,
                }
                for f in items
            ],
        }
    )


@bp.post("/health/jobs/<job_id>/retry")
def retry_failed_job(job_id: str) -> Any:
    """Queue a failed job of this shop again. ``requeued`` is false when it was no longer failed
    (already retried): a job is never queued twice. 404 unless it is this shop's."""
    if not JOB_ID.match(job_id):
        raise ApiError(404, "not_found", "no failed job with this id")
    try:
        outcome = container().jobs.retry_failed(g.shop.domain, job_id)
    except RedisError:
        raise ApiError(503, "queue_unavailable", "Redis did not answer; try again") from None
    if outcome is None:
        raise ApiError(404, "not_found", "no failed job with this id")
    return jsonify({"id": job_id, "requeued": outcome})
