"""Processing the webhook inbox: claim stored deliveries in batches and run their topic handlers.

Guarantees:
- At-least-once delivery to a handler, exactly-once effect: a handler's writes and the row's
  ``processed`` mark commit in one transaction, so a crash before the commit leaves the row
  claimable again once its lease expires, and a crash after leaves it done.
- Many workers can run this at once: a claim takes rows no other worker holds.
- A handler that keeps failing is parked as ``failed`` after ``MAX_ATTEMPTS`` (visible in the
  system health page) instead of blocking the queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from connector.domain.webhooks import MAX_ATTEMPTS, Delivery, DeliveryStatus
from connector.ports import Clock, Job, JobQueue, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

#: A handler applies one delivery inside the given unit of work (the caller commits).
Handler = Callable[[UnitOfWork, Delivery, dict[str, Any]], str | None]

CLAIM_LEASE = timedelta(minutes=5)
BATCH_SIZE = 100


def retry_delay(attempts: int) -> timedelta:
    """Back-off before the next attempt: 30 s, 1, 2, 4 ... minutes, at most an hour. A row that
    keeps failing must not be retried in a hot loop by the same drain."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), timedelta(hours=1))


@dataclass
class DrainResult:
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    batches: int = 0
    errors: list[str] = field(default_factory=list)


def subject_of(topic: str, payload: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The (customer id, order id) a delivery concerns, kept for privacy requests."""
    customer_id: Any = None
    order_id: Any = None
    if topic.startswith("orders/"):
        order_id = payload.get("id")
        customer = payload.get("customer")
        if isinstance(customer, Mapping):
            customer_id = customer.get("id")
    elif topic == "refunds/create":
        order_id = payload.get("order_id")
    elif topic == "customers/update":
        customer_id = payload.get("id")
    elif topic == "customers/data_request":
        customer = payload.get("customer")
        if isinstance(customer, Mapping):
            customer_id = customer.get("id")
    # customers/redact is not indexed: its own body is blanked by its handler.
    return _int_or_none(customer_id), _int_or_none(order_id)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def process_inbox(
    uow_factory: UnitOfWorkFactory,
    handlers: Mapping[str, Handler],
    clock: Clock,
    jobs: JobQueue | None = None,
    *,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
) -> DrainResult:
    """Drain the inbox until it is empty (or ``max_batches`` were done)."""
    if jobs is not None:
        jobs.acknowledge(Job.PROCESS_INBOX)
    result = DrainResult()
    while max_batches is None or result.batches < max_batches:
        with uow_factory() as uow:
            batch = uow.inbox.claim(batch_size, clock.now(), CLAIM_LEASE)
            uow.commit()
        if not batch:
            break
        result.batches += 1
        _apply_batch(uow_factory, handlers, clock, batch, result)
    return result


def _apply_batch(
    uow_factory: UnitOfWorkFactory,
    handlers: Mapping[str, Handler],
    clock: Clock,
    batch: list[Delivery],
    result: DrainResult,
) -> None:
    """One transaction for the batch, a savepoint per delivery.

    A failing delivery rolls back to its savepoint (its effects vanish, the others stay) and is
    recorded as failed in the same transaction. If the commit itself fails, nothing of the batch
    is applied and every row comes back when its lease expires: at-least-once delivery to the
    handlers, whose effects are idempotent.
    """
    outcomes: list[tuple[Delivery, str | None, str | None]] = []  # (delivery, status, error)
    with uow_factory() as uow:
        for delivery in batch:
            try:
                with uow.savepoint():
                    status = _apply_one(uow, handlers, clock, delivery)
                outcomes.append((delivery, status, None))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
                final = delivery.attempts >= MAX_ATTEMPTS
                log.exception("inbox.delivery_failed", extra={
                    "delivery_id": delivery.id, "topic": delivery.topic,
                    "shop": delivery.shop_domain, "final": final})
                now = clock.now()
                retry_at = None if final else now + retry_delay(delivery.attempts)
                uow.inbox.fail(delivery.id, error, now, retry_at=retry_at)
                outcomes.append((delivery, None, error))
        uow.commit()
    for _delivery, outcome, failure in outcomes:
        if failure is not None:
            result.failed += 1
            result.errors.append(failure)
        elif outcome == DeliveryStatus.SKIPPED:
            result.skipped += 1
        else:
            result.processed += 1


def _apply_one(
    uow: UnitOfWork, handlers: Mapping[str, Handler], clock: Clock, delivery: Delivery
) -> str:
    payload = json.loads(delivery.body)
    customer_id, order_id = subject_of(delivery.topic, payload)
    handler = handlers.get(delivery.topic)
    note: str | None
    if handler is None:
        status, note = DeliveryStatus.SKIPPED, "no handler for this topic in this version"
    else:
        status, note = DeliveryStatus.PROCESSED, handler(uow, delivery, payload)
    uow.inbox.complete(delivery.id, status, clock.now(), customer_id=customer_id,
                       order_id=order_id, note=note)
    return status


def sweep_inbox(uow_factory: UnitOfWorkFactory, jobs: JobQueue, clock: Clock) -> bool:
    """Scheduled safety net: re-trigger processing if any delivery is still waiting.

    Covers a queue that was down at intake, a lost job, and a worker killed mid-batch (its rows
    come back once their lease expires). Returns whether it triggered.
    """
    with uow_factory() as uow:
        waiting = uow.inbox.has_claimable(clock.now())
    if waiting:
        # A plain enqueue, not trigger(): a trigger whose job was lost may still look "queued".
        jobs.enqueue(Job.PROCESS_INBOX)
    return waiting
