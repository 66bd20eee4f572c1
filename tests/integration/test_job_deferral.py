"""A job throttled long by one shop's bucket is queued again for later instead of sleeping."""

from __future__ import annotations

import time
from types import SimpleNamespace

from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from adapters.queue.inprocess import InProcessJobQueue
from adapters.queue.rq_queue import RqJobQueue
from connector.ports import Job, PlatformThrottled
from entrypoints import jobs


def test_a_job_throttled_past_the_bound_is_queued_again_for_when_the_bucket_refills():
    queue = InProcessJobQueue(threaded=False)
    jobs.configure(SimpleNamespace(jobs=queue))  # type: ignore[arg-type]
    try:
        def throttled() -> int:
            raise PlatformThrottled("shop: throttled", 42.0)

        assert jobs._or_later(Job.SYNC_CODES, ("a-shop.myshopify.com",), throttled) is None
        assert queue.deferred == [(42.0, Job.SYNC_CODES, ("a-shop.myshopify.com",))]
        assert jobs._or_later(Job.SYNC_CODES, ("a-shop.myshopify.com",), lambda: 7) == 7
        assert len(queue.deferred) == 1
    finally:
        jobs.configure(None)


def test_rq_enqueue_in_puts_the_job_in_the_scheduled_registry(redis_url):
    redis = Redis.from_url(redis_url)
    RqJobQueue(redis).enqueue_in(30.0, Job.SYNC_CODES, "a-shop.myshopify.com")
    registry = ScheduledJobRegistry(queue=Queue("default", connection=redis))
    [job_id] = registry.get_job_ids()
    job = Queue("default", connection=redis).fetch_job(job_id)
    assert job is not None
    assert job.func_name == "entrypoints.jobs.sync_codes"
    assert job.args == ("a-shop.myshopify.com",)
    assert 25 < registry.get_expiration_time(job).timestamp() - time.time() <= 31
