"""``JobQueue`` on RQ.

``trigger`` is a coalescing wake-up that costs one Redis ``SET NX`` per call: a run is enqueued
only when no run is already waiting. The job clears the flag first thing (``acknowledge``), so a
trigger that comes after that point enqueues a fresh run: no trigger is ever lost, and a burst of
1,000 webhooks makes a handful of jobs, not 1,000.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from adapters.logs import redact
from adapters.queue.registry import JOBS, QUEUES, JobSpec
from connector.ports import FailedJob
from connector.ports import Job as AppJob

log = logging.getLogger(__name__)

TRIGGER_TTL = 300  # a flag whose job was lost frees itself; the sweeper covers the gap
_DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
# Our job functions by import path → their Job name (only these are listed as failed jobs).
_NAMES = {spec.func: job.value for job, spec in JOBS.items()}
ERROR_CHARS = 300
SCAN_LIMIT = 2000  # failed jobs looked at per queue (newest first) to find a shop's


def error_summary(exc_string: str | None) -> str:
    """The exception's last line (type and message), secrets redacted, at most 300 characters:
    what a merchant can act on, without a stack trace."""
    lines = [line.strip() for line in (exc_string or "").splitlines() if line.strip()]
    last = lines[-1] if lines else "failed without an error message"
    last = redact(last)
    return last if len(last) <= ERROR_CHARS else last[: ERROR_CHARS - 1] + "…"


def rq_job_id(job_id: str) -> str:
    """RQ accepts only letters, digits, ``_`` and ``-`` in job ids; ours carry shop domains
    (``sync-codes:x.myshopify.com``), so the rest is mapped to ``_`` (still one id per shop)."""
    return _UNSAFE.sub("_", job_id)


def _trigger_key(job: AppJob) -> str:
    return f"ambassador:trigger:{job.value}"


class RqJobQueue:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._queues: dict[str, Queue] = {}

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self._redis)
        return self._queues[name]

    def enqueue(self, job: AppJob, *args: Any, job_id: str | None = None) -> None:
        spec = JOBS[job]
        self._enqueue(spec, args, job_id)

    def _enqueue(self, spec: JobSpec, args: tuple[Any, ...], job_id: str | None) -> None:
        options: dict[str, Any] = {
            "job_timeout": spec.timeout,
            "result_ttl": 0 if job_id else 300,
            "failure_ttl": 7 * 24 * 3600,
        }
        if spec.retries:
            options["retry"] = Retry(max=len(spec.retries), interval=list(spec.retries))
        queue = self.queue(spec.queue)
        job_id = rq_job_id(job_id) if job_id else None
        try:
            queue.enqueue(spec.func, *args, job_id=job_id, unique=bool(job_id), **options)
        except DuplicateJobError:
            # RQ's uniqueness refuses any id whose job hash still exists, including a job that
            # already finished or failed (kept for its failure_ttl): that one must not block the
            # id, so it is cleared and the job queued again. A queued or running one is kept.
            try:
                existing = Job.fetch(job_id or "", connection=self._redis)
            except NoSuchJobError:  # it expired in between: nothing blocks the id any more
                existing = None
            if existing is not None and existing.get_status(refresh=True) not in _DONE:
                log.debug("queue.duplicate", extra={"job_id": job_id})
                return
            if existing is not None:
                existing.delete()
            try:
                queue.enqueue(spec.func, *args, job_id=job_id, unique=True, **options)
            except DuplicateJobError:
                log.debug("queue.duplicate", extra={"job_id": job_id})

    def enqueue_in(self, delay: float, job: AppJob, *args: Any) -> None:
        """RQ's scheduled registry (``ambassador worker`` runs the scheduler). No job id: a
        job deferring itself while it runs must not overwrite its own hash."""
        spec = JOBS[job]
        options: dict[str, Any] = {
            "job_timeout": spec.timeout,
            "result_ttl": 300,
            "failure_ttl": 7 * 24 * 3600,
        }
        if spec.retries:
            options["retry"] = Retry(max=len(spec.retries), interval=list(spec.retries))
        self.queue(spec.queue).enqueue_in(
            timedelta(seconds=max(delay, 0.0)), spec.func, *args, **options
        )

    def trigger(self, job: AppJob) -> None:
        key = _trigger_key(job)
        if self._redis.set(key, 1, nx=True, ex=TRIGGER_TTL):
            try:
                self._enqueue(JOBS[job], (), None)
            except Exception:
                self._redis.delete(key)
                raise

    def acknowledge(self, job: AppJob) -> None:
        self._redis.delete(_trigger_key(job))

    def _shop_failed(self, shop_domain: str) -> list[tuple[Job, FailedJobRegistry]]:
        found = []
        for name in QUEUES:
            registry = FailedJobRegistry(queue=self.queue(name))
            ids = registry.get_job_ids(0, SCAN_LIMIT - 1, desc=True)
            for job in Job.fetch_many(ids, connection=self._redis):
                if job is not None and _belongs_to(job, shop_domain):
                    found.append((job, registry))
        return found

    def failed_jobs(self, shop_domain: str, limit: int = 50) -> list[FailedJob]:
        items = []
        for job, registry in self._shop_failed(shop_domain):
            result = job.latest_result()
            items.append(
                FailedJob(
                    id=job.id,
                    job=_NAMES[job.func_name or ""],
                    queue=registry.name,
                    failed_at=job.ended_at.replace(tzinfo=UTC) if job.ended_at else None,
                    error=error_summary(result.exc_string if result else None),
                )
            )
        items.sort(key=lambda f: f.failed_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return items[:limit]

    def retry_failed(self, shop_domain: str, job_id: str) -> bool | None:
        if not _UNSAFE.sub("", job_id) == job_id or len(job_id) > 200:
            return None
        try:
            job = Job.fetch(job_id, connection=self._redis)
        except NoSuchJobError:
            return None
        if not _belongs_to(job, shop_domain):
            return None
        registry = FailedJobRegistry(queue=self.queue(job.origin))
        try:
            # ZREM decides: of two concurrent retries only one removes the entry and queues it.
            registry.requeue(job)
        except InvalidJobOperation:
            return False
        return True


def _belongs_to(job: Job, shop_domain: str) -> bool:
    """One of our job functions whose first argument is this shop's domain."""
    try:
        func, args = job.func_name, job.args
    except Exception:  # noqa: BLE001 - a job whose data cannot be read is nobody's
        return False
    return func in _NAMES and bool(args) and args[0] == shop_domain
