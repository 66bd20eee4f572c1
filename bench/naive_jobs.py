"""The naive attribution worker: the baseline ``bench/attribution_throughput.py`` runs next to ours.

The naive design is the textbook one: the webhook endpoint enqueues **one RQ job per webhook**,
and RQ's default :class:`rq.Worker` runs each job in a **forked work horse**. What one job does
here (:func:`apply_delivery`):

1. get the app's container the way the app's own job functions do (``entrypoints.jobs``); the
   worker builds it before forking (as a module-level engine would be), but a forked horse
   starts with an empty connection pool: each job opens a new database connection, which ends
   with the horse;
2. read its delivery from the inbox, parse it, run the app's own topic handler (the same core
   code as ours: ``connector.services.attribution``), mark the delivery processed, commit.

It is kept honest: the same handlers and database, one transaction per delivery like ours, and
the worker *preloads* the app's modules and container before forking (``rq worker`` would
import the modules again in every horse, several hundred ms per job, and building the container
per job costs ~150 ms of CPU). What it pays for is the design: a fork, an RQ job life cycle in
Redis (status, registries, result) and a new database connection per webhook.

Run by the benchmark as ``python bench/naive_jobs.py QUEUE`` with ``REDIS_URL`` and the app's
settings in the environment: a forking ``Worker`` in burst mode (exits when the queue is empty).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.db.tables import webhook_deliveries
from connector.domain.webhooks import Delivery, DeliveryStatus
from connector.ports import Completion
from connector.services.inbox import subject_of
from entrypoints import jobs

FUNC = "bench.naive_jobs.apply_delivery"


def apply_delivery(delivery_id: int) -> str:
    """Apply one stored webhook delivery (one RQ job per webhook)."""
    c = jobs.container()  # the parent's (see main); its connection pool is new in every horse
    _t = webhook_deliveries.c
    with c.uow() as uow:
        row = uow.connection.execute(  # type: ignore[attr-defined]
            sa.select(webhook_deliveries).where(_t.id == delivery_id)
        ).one()
        delivery = Delivery(
            id=row.id,
            topic=row.topic,
            webhook_id=row.webhook_id,
            shop_domain=row.shop_domain,
            body=row.body,
            attempts=row.attempts + 1,
            received_at=row.received_at,
            triggered_at=row.triggered_at,
        )
        payload = json.loads(delivery.body)
        customer_id, order_id = subject_of(delivery.topic, payload)
        handler = c.handlers.get(delivery.topic)
        if handler is None:
            status, note = DeliveryStatus.SKIPPED, "no handler"
        else:
            status, note = DeliveryStatus.PROCESSED, handler(uow, delivery, payload)
        uow.inbox.complete_many(
            [Completion(delivery.id, status, customer_id, order_id, note)], c.clock.now()
        )
        uow.commit()
    return note or ""


def main(argv: list[str]) -> int:
    from redis import Redis
    from rq import Queue, Worker

    import bench.naive_jobs  # noqa: F401 - preload the job's module (and the app) before forking

    # Preloaded too, as a module-level ``engine = create_engine(...)`` would be: settings,
    # engine and clients are built once; no connection is opened here, so every forked horse
    # starts with an empty pool and connects anew.
    jobs.container()
    queue_name = argv[1] if len(argv) > 1 else "naive"
    redis = Redis.from_url(os.environ["REDIS_URL"])
    worker = Worker([Queue(queue_name, connection=redis)], connection=redis)
    worker.work(burst=True, logging_level="WARNING")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
