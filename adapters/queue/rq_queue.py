"""``JobQueue`` on RQ.

``trigger`` is a coalescing wake-up that costs one Redis ``SET NX`` per call: a run is enqueued
only when no run is already waiting. The job clears the flag first thing (``acknowledge``), so a
trigger that comes after that point enqueues a fresh run: no trigger is ever lost, and a burst of
1,000 webhooks makes a handful of jobs, not 1,000.
"""

from __future__ import annotations

import logging
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError

from adapters.queue.registry import JOBS, JobSpec
from connector.ports import Job

log = logging.getLogger(__name__)

TRIGGER_TTL = 300  # a flag whose job was lost frees itself; the sweeper covers the gap


def _trigger_key(job: Job) -> str:
    return f"ambassador:trigger:{job.value}"


class RqJobQueue:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._queues: dict[str, Queue] = {}

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self._redis)
        return self._queues[name]

    def enqueue(self, job: Job, *args: Any, job_id: str | None = None) -> None:
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
        try:
            self.queue(spec.queue).enqueue(
                spec.func, *args, job_id=job_id, unique=bool(job_id), **options
            )
        except DuplicateJobError:
            log.debug("queue.duplicate", extra={"job_id": job_id})

    def trigger(self, job: Job) -> None:
        key = _trigger_key(job)
        if self._redis.set(key, 1, nx=True, ex=TRIGGER_TTL):
            try:
                self._enqueue(JOBS[job], (), None)
            except Exception:
                self._redis.delete(key)
                raise

    def acknowledge(self, job: Job) -> None:
        self._redis.delete(_trigger_key(job))
