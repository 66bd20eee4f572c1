"""``JobQueue`` without Redis (embedded mode and unit tests): jobs run in this process.

``threaded=True`` (``ambassador demo``, ``ambassador serve`` without ``REDIS_URL``) runs them on
one background thread, in order, so a request never waits for a job; ``threaded=False`` runs them
inline at enqueue time (tests that want to see effects immediately). Jobs are not durable here:
what a crash loses, the inbox sweeper re-triggers, exactly as with RQ.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from adapters.queue.registry import JOBS
from connector.ports import FailedJob, Job

log = logging.getLogger(__name__)


def resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


class InProcessJobQueue:
    def __init__(self, *, threaded: bool = True) -> None:
        self._threaded = threaded
        self._pending: set[Job] = set()
        self._lock = threading.Lock()
        self._work: queue.Queue[tuple[Job, tuple[Any, ...]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self.history: list[tuple[Job, tuple[Any, ...]]] = []
        #: Jobs queued for later: (delay, job, args). Threaded, they run when it has passed.
        self.deferred: list[tuple[float, Job, tuple[Any, ...]]] = []

    def enqueue(self, job: Job, *args: Any, job_id: str | None = None) -> None:
        self.history.append((job, args))
        if not self._threaded:
            self._run(job, args)
            return
        self._ensure_thread()
        self._work.put((job, args))

    def enqueue_in(self, delay: float, job: Job, *args: Any) -> None:
        """Threaded: queued after ``delay`` seconds (a timer thread). Not threaded: recorded
        only, since running it at once could loop (a job deferring itself again)."""
        self.deferred.append((delay, job, args))
        if not self._threaded or self._stopped.is_set():
            return
        timer = threading.Timer(max(delay, 0.0), self.enqueue, (job, *args))
        timer.daemon = True
        timer.start()

    def trigger(self, job: Job) -> None:
        with self._lock:
            if job in self._pending:
                return
            self._pending.add(job)
        self.enqueue(job)

    def acknowledge(self, job: Job) -> None:
        with self._lock:
            self._pending.discard(job)

    def failed_jobs(self, shop_domain: str, limit: int = 50) -> list[FailedJob]:
        """Nothing is kept in process: a failed job is logged, and what it left undone is
        picked up by its periodic job."""
        return []

    def retry_failed(self, shop_domain: str, job_id: str) -> bool | None:
        return None

    def _run(self, job: Job, args: tuple[Any, ...]) -> None:
        try:
            resolve(JOBS[job].func)(*args)
        except Exception:
            log.exception("queue.inprocess.job_failed", extra={"job": job.value})
        finally:
            self.acknowledge(job)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while (item := self._work.get()) is not None:
            self._run(*item)
            self._work.task_done()

    def start_schedule(self, schedule: dict[Job, int]) -> None:
        """Run the periodic jobs (every N seconds) on a timer thread, as the RQ cron does."""

        def tick(job: Job, every: int) -> None:
            while not self._stopped.wait(every):
                self.enqueue(job)

        for job, every in schedule.items():
            threading.Thread(
                target=tick, args=(job, every), name=f"cron-{job}", daemon=True
            ).start()

    def close(self) -> None:
        """Stop the periodic jobs, and the worker thread once the jobs already queued ran (a
        stopped demo must not go on sweeping a database that is gone)."""
        self._stopped.set()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._work.put(None)

    def join(self, timeout: float = 10.0) -> None:
        """Wait until every queued job has run (tests, demo shutdown)."""
        if not self._threaded:
            return
        done = threading.Event()

        def waiter() -> None:
            self._work.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        done.wait(timeout)
