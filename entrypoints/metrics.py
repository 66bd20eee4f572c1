"""``GET /metrics``: figures an operator's Prometheus scrapes, read at scrape time from the
database and Redis (so every gunicorn worker answers the same, with no shared counters).

Enabled by ``METRICS_TOKEN``: the scraper sends ``Authorization: Bearer <token>`` (compared in
constant time). Unset, the route does not exist (404): volumes are business data.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from adapters.bootstrap import Container
from adapters.queue.registry import QUEUES


class AmbassadorCollector(Collector):
    def __init__(self, container: Container) -> None:
        self._c = container

    def collect(self) -> Iterator[Metric]:
        c = self._c
        database = GaugeMetricFamily("ambassador_database_up", "1 if the database answered")
        try:
            with c.uow() as uow:
                stats = uow.inbox.stats(c.clock.now())
            database.add_metric([], 1)
        except Exception:  # noqa: BLE001 - reported as a figure, not an error page
            stats = None
            database.add_metric([], 0)
        yield database
        if stats is not None:
            deliveries = GaugeMetricFamily(
                "ambassador_inbox_deliveries", "Webhook deliveries by status", labels=["status"]
            )
            for status in ("pending", "processing", "failed"):
                deliveries.add_metric([status], getattr(stats, status))
            yield deliveries
            lag = GaugeMetricFamily(
                "ambassador_inbox_oldest_pending_age_seconds",
                "Age of the oldest delivery waiting to be applied (0 when none waits)",
            )
            oldest = stats.oldest_pending_at
            lag.add_metric([], (c.clock.now() - oldest).total_seconds() if oldest else 0.0)
            yield lag
            stored = CounterMetricFamily(
                "ambassador_webhooks_stored", "Webhook deliveries stored since the start"
            )
            stored.add_metric([], stats.stored_total)
            yield stored
            yield from self._payouts()
        yield from self._queues()

    def _payouts(self) -> Iterator[Metric]:
        c = self._c
        now = c.clock.now()
        try:
            with c.uow() as uow:
                counts, oldest_due = uow.payouts.open_figures(now)
        except Exception:  # noqa: BLE001 - the database went away mid-scrape: skip the figures
            return
        by_state = GaugeMetricFamily(
            "ambassador_payouts_open",
            "Payouts not yet delivered or cancelled, by state (failed = waiting for a person)",
            labels=["state"],
        )
        for state, count in sorted(counts.items()):
            by_state.add_metric([state], count)
        yield by_state
        wait = GaugeMetricFamily(
            "ambassador_payouts_oldest_due_age_seconds",
            "How long the longest-waiting due Shopify reward has waited (0 when none waits)",
        )
        wait.add_metric([], (now - oldest_due).total_seconds() if oldest_due else 0.0)
        yield wait

    def _queues(self) -> Iterator[Metric]:
        redis_up = GaugeMetricFamily("ambassador_redis_up", "1 if Redis answered")
        if self._c.redis is None:
            redis_up.add_metric([], 0)
            yield redis_up
            return
        from rq import Queue
        from rq.registry import FailedJobRegistry, StartedJobRegistry

        jobs = GaugeMetricFamily(
            "ambassador_queue_jobs", "RQ jobs by queue and state", labels=["queue", "state"]
        )
        try:
            for name in QUEUES:
                queue = Queue(name, connection=self._c.redis)
                jobs.add_metric([name, "queued"], queue.count)
                jobs.add_metric([name, "started"], StartedJobRegistry(queue=queue).count)
                jobs.add_metric([name, "failed"], FailedJobRegistry(queue=queue).count)
        except Exception:  # noqa: BLE001 - reported as a figure
            redis_up.add_metric([], 0)
            yield redis_up
            return
        redis_up.add_metric([], 1)
        yield redis_up
        yield jobs


def register(app: Flask, container: Container) -> None:
    token = container.settings.metrics_token
    if not token:
        return
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AmbassadorCollector(container))

    @app.get("/metrics")
    def metrics() -> Any:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            response = jsonify({"error": "unauthorized", "message": "a valid metrics token"})
            response.status_code = 401
            return response
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
