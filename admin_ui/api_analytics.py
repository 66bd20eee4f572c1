"""``/api/v1/analytics/...`` (the dashboard's charts), ``/api/v1/health/system`` (the system
health page) and ``/api/v1/ambassadors/{id}/salesforce`` (an ambassador's Contact sync).
Registered on the API blueprint; every figure is the signed-in shop's own, except the
background queues' sizes, which are counts only (no job's content) and the same for every
shop on this installation.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask import g, jsonify, request

from adapters.db import analytics
from adapters.queue.registry import QUEUES
from admin_ui.api import ApiError, bp, container
from connector.services import inbox as inbox_service

MAX_DAYS = 366
TOP_LIMIT = 10


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ApiError(
            422, "invalid_parameter", f"{name} must be a whole number from {low} to {high}"
        )
    return int(raw)


@bp.get("/analytics/timeseries")
def analytics_timeseries() -> Any:
    """Orders credited to ambassadors and the revenue credited, per UTC day over the last
    ``days`` days (default 30, today included), every day present (zeros where none)."""
    days = _int_arg("days", 30, 1, MAX_DAYS)
    c = container()
    today = c.clock.now().date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=c.clock.now().tzinfo)
    with c.engine.connect() as conn:
        found = {f.day: f for f in analytics.credited_by_day(conn, g.shop.id, since)}
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        figures = found.get(day)
        series.append(
            {
                "date": day.isoformat(),
                "orders": figures.orders if figures else 0,
                "revenue": _money(figures.revenue if figures else Decimal(0)),
            }
        )
    return jsonify(
        {
            "currency": g.shop.currency,
            "days": days,
            "series": series,
            "totals": {
                "orders": sum(f.orders for f in found.values()),
                "revenue": _money(sum((f.revenue for f in found.values()), Decimal(0))),
            },
        }
    )


@bp.get("/analytics/program")
def analytics_program() -> Any:
    """Ambassadors by status, active ambassadors by tier, and the top ambassadors by credited
    revenue (at most ``limit``, default 10)."""
    limit = _int_arg("limit", TOP_LIMIT, 1, 50)
    c = container()
    with c.uow() as uow:
        statuses = uow.ambassadors.count_by_status(g.shop.id)
    with c.engine.connect() as conn:
        tiers = analytics.active_by_tier(conn, g.shop.id)
        top = analytics.top_ambassadors(conn, g.shop.id, limit)
    return jsonify(
        {
            "currency": g.shop.currency,
            "statuses": {s: statuses.get(s, 0) for s in ("applied", "active", "paused", "removed")},
            "tiers": [
                {"tier_id": t.tier_id, "name": t.name or "No tier", "ambassadors": t.ambassadors}
                for t in tiers
            ],
            "top": [
                {
                    "id": a.id,
                    "first_name": a.first_name,
                    "last_name": a.last_name,
                    "email": a.email,
                    "code": a.code,
                    "orders": a.orders,
                    "revenue": _money(a.revenue),
                    "currency": a.currency,
                }
                for a in top
            ],
        }
    )


@bp.get("/health/system")
def system_health() -> Any:
    """The shop's webhook inbox (backlog, parked deliveries) and the background queues."""
    c = container()
    now = c.clock.now()
    with c.uow() as uow:
        inbox = uow.inbox.stats(now, g.shop.domain)
    with c.engine.connect() as conn:
        parked = analytics.failed_deliveries(conn, g.shop.domain)
    oldest = inbox.oldest_pending_at
    return jsonify(
        {
            "inbox": {
                "pending": inbox.pending,
                "processing": inbox.processing,
                "failed": inbox.failed,
                "oldest_pending_age_seconds": round(max(0.0, (now - oldest).total_seconds()), 3)
                if oldest
                else None,
            },
            "failed_deliveries": [
                {
                    "id": d.id,
                    "topic": d.topic,
                    "webhook_id": d.webhook_id,
                    "attempts": d.attempts,
                    "last_error": (d.last_error or "")[:500] or None,
                    "received_at": _iso(d.received_at),
                }
                for d in parked
            ],
            "jobs": _queues(c),
        }
    )


@bp.post("/health/deliveries/<int:delivery_id>/replay")
def replay_delivery(delivery_id: int) -> Any:
    """Try a parked webhook delivery again (fresh attempts); 404 unless it is this shop's and
    parked."""
    c = container()
    if not inbox_service.replay_delivery(c.uow(), c.jobs, g.shop.domain, delivery_id):
        raise ApiError(404, "not_found", "no parked delivery with this id")
    return jsonify({"id": delivery_id, "replayed": True})


@bp.get("/ambassadors/<int:ambassador_id>/salesforce")
def ambassador_salesforce(ambassador_id: int) -> Any:
    """The ambassador's Contact in Salesforce: ``state`` synced, retry, parked, or not_synced
    (never written yet), the Contact id, when it was last written, the last error."""
    c = container()
    with c.uow() as uow:
        if uow.ambassadors.get(g.shop.id, ambassador_id) is None:
            raise ApiError(404, "not_found", "no such ambassador")
    with c.engine.connect() as conn:
        link = analytics.contact_sync(conn, g.shop.id, ambassador_id)
    if link is None:
        return jsonify({"state": "not_synced", "contact_id": None, "synced_at": None,
                        "error_code": None, "error_message": None, "retry_at": None,
                        "note": None})
    return jsonify({
        "state": link.state,
        "contact_id": link.contact_id,
        "synced_at": _iso(link.synced_at),
        "error_code": link.error_code,
        "error_message": link.error_message,
        "retry_at": _iso(link.retry_at),
        "note": link.note,
    })


def _queues(c: Any) -> dict[str, Any]:
    """RQ queue sizes (queued, started, failed) or, without Redis, the in-process runner."""
    if c.redis is None:
        return {"mode": "in-process", "queues": []}
    from redis.exceptions import RedisError
    from rq import Queue
    from rq.registry import FailedJobRegistry, StartedJobRegistry

    try:
        queues = []
        for name in QUEUES:
            queue = Queue(name, connection=c.redis)
            queues.append(
                {
                    "name": name,
                    "queued": queue.count,
                    "started": StartedJobRegistry(queue=queue).count,
                    "failed": FailedJobRegistry(queue=queue).count,
                }
            )
    except RedisError:
        return {"mode": "unavailable", "queues": []}
    return {"mode": "rq", "queues": queues}
