"""Processing the webhook inbox: claim stored deliveries in batches and run their topic handlers.

Guarantees:
- At-least-once delivery to a handler, exactly-once effect: a handler's writes and the row's
  ``processed`` mark commit in one transaction, so a crash before the commit leaves the row
  claimable again once its lease expires (at once, if the process survived the failure: its
  next drain releases it), and a crash after leaves it done.
- Many workers can run this at once: a claim takes rows no other worker holds.
- A handler that keeps failing is parked as ``failed`` after ``MAX_ATTEMPTS`` (visible in the
  system health page) instead of blocking the queue.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from connector.domain.webhooks import MAX_ATTEMPTS, Delivery, DeliveryStatus
from connector.ports import Clock, Completion, Job, JobQueue, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

#: A handler applies one delivery inside the given unit of work (the caller commits).
Handler = Callable[[UnitOfWork, Delivery, dict[str, Any]], str | None]


class BatchHandler(Protocol):
    """A handler that can also apply a run of deliveries at once (``batch``), with the same
    effects as applying them one at a time, in order. The inbox hands it every run of
    consecutive deliveries of the topics it serves (the same handler object)."""

    def __call__(
        self, uow: UnitOfWork, delivery: Delivery, payload: dict[str, Any]
    ) -> str | None: ...

    def batch(
        self, uow: UnitOfWork, items: Sequence[tuple[Delivery, dict[str, Any]]]
    ) -> list[str | None]:
        """Each delivery's note, in order."""
        ...


CLAIM_LEASE = timedelta(minutes=5)
BATCH_SIZE = 200  # per transaction; bench/attribution_throughput.py measured 100 and 250
#: The batch when several shops have work. A shop's delivery waits for the batch under way
#: and then for its own, so their length bounds a small shop's latency beside a flash sale:
#: bench/shop_fairness.py measured 200 (a claim and ~65 ms) at 4-6× the shop's solo latency.
SHARED_BATCH_SIZE = 40
#: Batches of a drain stay short this long after one held several shops' deliveries: a small
#: shop's next delivery usually arrives after the batch that served its last one has started,
#: which the big shop alone would otherwise have filled to ``batch_size``.
SHARED_WINDOW = timedelta(seconds=2)


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
    stopped: bool = False  # a shutdown request ended the drain before the inbox was empty


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
    shared_batch_size: int | None = SHARED_BATCH_SIZE,
    max_batches: int | None = None,
    decode: Callable[[str], Any] = json.loads,
    stop: Callable[[], bool] | None = None,
) -> DrainResult:
    """Drain the inbox until it is empty (or ``max_batches`` were done). ``decode`` parses a
    delivery's body (the worker passes a faster JSON parser). While more than one shop has
    work, and for ``SHARED_WINDOW`` after a batch held several shops' deliveries, batches hold
    at most ``shared_batch_size`` deliveries (``None``: always ``batch_size``).

    ``stop`` (the worker's shutdown request) is checked before each claim: a batch under way is
    finished and committed, no new one is claimed, and the rest is left pending (not leased)
    with a new run triggered for whichever worker comes next."""
    if jobs is not None:
        jobs.acknowledge(Job.PROCESS_INBOX)
    _UNFINISHED.release(uow_factory)
    result = DrainResult()
    shared_until: datetime | None = None  # short batches until then (this drain only)
    while max_batches is None or result.batches < max_batches:
        if stop is not None and stop():
            result.stopped = True
            if jobs is not None:
                jobs.trigger(Job.PROCESS_INBOX)
            break
        claimed_at = clock.now()
        shared = shared_until is not None and claimed_at < shared_until
        with uow_factory() as uow:
            batch = uow.inbox.claim(
                min(batch_size, shared_batch_size) if shared and shared_batch_size else batch_size,
                claimed_at,
                CLAIM_LEASE,
                shared_limit=shared_batch_size,
            )
            uow.commit()
        if not batch:
            break
        if len({d.shop_domain for d in batch}) > 1:
            shared_until = claimed_at + SHARED_WINDOW
        result.batches += 1
        try:
            _apply_batch(uow_factory, handlers, clock, batch, result, decode)
        except Exception:
            # E.g. the database went away mid-batch: nothing of it committed. Its rows are
            # released by this process's next drain instead of waiting out their lease.
            _UNFINISHED.add([d.id for d in batch], claimed_at + CLAIM_LEASE)
            raise
    return result


class _Unfinished:
    """Claims of this process whose batch transaction failed, to release at the next drain
    (``InboxRepository.release``: only rows still under that very lease)."""

    def __init__(self) -> None:
        self._claims: list[tuple[list[int], datetime]] = []
        self._lock = threading.Lock()

    def add(self, ids: list[int], leased_until: datetime) -> None:
        with self._lock:
            self._claims.append((ids, leased_until))

    def release(self, uow_factory: UnitOfWorkFactory) -> None:
        with self._lock:
            claims, self._claims = self._claims, []
        if not claims:
            return
        try:
            with uow_factory() as uow:
                released = sum(uow.inbox.release(ids, until) for ids, until in claims)
                uow.commit()
        except Exception:
            with self._lock:  # still unreachable: try again at the next drain
                self._claims = claims + self._claims
            raise
        if released:
            log.warning("inbox.released_unfinished_claims", extra={"deliveries": released})


_UNFINISHED = _Unfinished()


def _apply_batch(
    uow_factory: UnitOfWorkFactory,
    handlers: Mapping[str, Handler],
    clock: Clock,
    batch: list[Delivery],
    result: DrainResult,
    decode: Callable[[str], Any],
) -> None:
    """One transaction for the batch.

    Runs of consecutive deliveries served by one :class:`BatchHandler` are applied together,
    in a savepoint; if that fails, the run is applied again one delivery at a time. Every
    other delivery gets a savepoint of its own. A failing delivery rolls back to its
    savepoint (its effects vanish, the others stay) and is recorded as failed in the same
    transaction. If the commit itself fails, nothing of the batch is applied and every row
    comes back when its lease expires: at-least-once delivery to the handlers, whose effects
    are idempotent.
    """
    done: list[Completion] = []
    failures: list[str] = []
    with uow_factory() as uow:
        run: list[tuple[Delivery, dict[str, Any]]] = []
        run_handler: Any = None

        def flush_run() -> None:
            if not (len(run) > 1 and _apply_run(uow, run_handler, run, done)):
                for delivery, payload in run:
                    _apply_single(uow, handlers, clock, delivery, payload, done, failures)
            run.clear()

        for delivery in batch:
            try:
                payload = decode(delivery.body)
                if not isinstance(payload, dict):
                    raise ValueError("the body is not a JSON object")
            except ValueError as exc:
                flush_run()
                _record_failure(uow, clock, delivery, exc, failures)
                continue
            handler = handlers.get(delivery.topic)
            if handler is not None and getattr(handler, "batch", None) is not None:
                if run and handler is not run_handler:
                    flush_run()
                run_handler = handler
                run.append((delivery, payload))
                continue
            flush_run()
            _apply_single(uow, handlers, clock, delivery, payload, done, failures)
        flush_run()
        uow.inbox.complete_many(done, clock.now())
        uow.commit()
    result.failed += len(failures)
    result.errors.extend(failures)
    result.skipped += sum(1 for c in done if c.status == DeliveryStatus.SKIPPED)
    result.processed += sum(1 for c in done if c.status != DeliveryStatus.SKIPPED)


def _apply_run(
    uow: UnitOfWork,
    handler: BatchHandler,
    run: list[tuple[Delivery, dict[str, Any]]],
    done: list[Completion],
) -> bool:
    """The fast path: the whole run in one savepoint. False (nothing applied) if it failed."""
    try:
        with uow.savepoint():
            notes = handler.batch(uow, run)
    except Exception:
        log.warning(
            "inbox.batch_failed_retrying_one_by_one", exc_info=True, extra={"deliveries": len(run)}
        )
        return False
    for (delivery, payload), note in zip(run, notes, strict=True):
        done.append(_completion(delivery, payload, DeliveryStatus.PROCESSED, note))
    return True


def _apply_single(
    uow: UnitOfWork,
    handlers: Mapping[str, Handler],
    clock: Clock,
    delivery: Delivery,
    payload: dict[str, Any],
    done: list[Completion],
    failures: list[str],
) -> None:
    handler = handlers.get(delivery.topic)
    if handler is None:
        skipped = "no handler for this topic in this version"
        done.append(_completion(delivery, payload, DeliveryStatus.SKIPPED, skipped))
        return
    try:
        with uow.savepoint():
            note = handler(uow, delivery, payload)
    except Exception as exc:  # noqa: BLE001 - recorded (and logged) as this delivery's failure
        _record_failure(uow, clock, delivery, exc, failures)
        return
    done.append(_completion(delivery, payload, DeliveryStatus.PROCESSED, note))


def _completion(
    delivery: Delivery, payload: dict[str, Any], status: str, note: str | None
) -> Completion:
    customer_id, order_id = subject_of(delivery.topic, payload)
    return Completion(delivery.id, status, customer_id, order_id, note)


def _record_failure(
    uow: UnitOfWork, clock: Clock, delivery: Delivery, exc: Exception, failures: list[str]
) -> None:
    error = f"{type(exc).__name__}: {exc}"[:2000]
    final = delivery.attempts >= MAX_ATTEMPTS
    log.error(
        "inbox.delivery_failed",
        exc_info=exc,
        extra={
            "delivery_id": delivery.id,
            "topic": delivery.topic,
            "shop": delivery.shop_domain,
            "final": final,
        },
    )
    now = clock.now()
    uow.inbox.fail(
        delivery.id, error, now, retry_at=None if final else now + retry_delay(delivery.attempts)
    )
    failures.append(error)


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


def replay_delivery(uow: UnitOfWork, jobs: JobQueue, shop_domain: str, delivery_id: int) -> bool:
    """The merchant's "try again" on a parked delivery: back in line with fresh attempts, and
    the inbox job triggered once that is committed. Idempotent: a delivery that is not parked
    (already replayed, applied, or another shop's) is left alone and False is returned."""
    with uow:
        replayed = uow.inbox.replay(shop_domain, delivery_id)
        if replayed:
            uow.after_commit(lambda: jobs.trigger(Job.PROCESS_INBOX))
        uow.commit()
    if replayed:
        log.info("inbox.delivery_replayed", extra={"shop": shop_domain, "delivery_id": delivery_id})
    return replayed
