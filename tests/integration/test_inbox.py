"""The webhook inbox on real PostgreSQL and the RQ queue on real Redis."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue, SimpleWorker

from adapters.bootstrap import bootstrap
from adapters.clock import FakeClock
from adapters.queue.inprocess import InProcessJobQueue
from adapters.queue.rq_queue import RqJobQueue
from connector.domain.shops import OfflineToken, Shop, ShopStatus
from connector.domain.webhooks import MAX_ATTEMPTS, IncomingWebhook
from connector.ports import Job
from connector.services import inbox
from connector.services.intake import accept_webhook
from entrypoints import jobs
from tests.conftest import SHOP


def hook(topic: str = "customers/update", body: dict | None = None) -> IncomingWebhook:
    return IncomingWebhook(
        topic=topic,
        webhook_id=str(uuid.uuid4()),
        shop_domain=SHOP,
        body=json.dumps(body or {"id": 1, "customer": {"id": 7}}),
        api_version="2026-07",
        event_id=None,
        triggered_at=None,
    )


def store(container, n: int, topic: str = "customers/update") -> list[int]:
    ids = []
    with container.uow() as uow:
        for i in range(n):
            ids.append(uow.inbox.add(hook(topic, {"id": i}), container.clock.now()))
        uow.commit()
    return ids


def statuses(container) -> dict[str, int]:
    with container.engine.connect() as conn:
        return dict(
            conn.exec_driver_sql(
                "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"
            ).all()
        )


def test_concurrent_claims_take_disjoint_rows(container):
    store(container, 200)
    claimed: list[list[int]] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        with container.uow() as uow:
            batch = uow.inbox.claim(80, container.clock.now(), timedelta(minutes=5))
            uow.commit()
        claimed.append([d.id for d in batch])

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for batch in claimed for i in batch]
    assert len(all_ids) == len(set(all_ids)) == 200  # every row once, none twice


def test_rows_of_a_killed_worker_come_back_when_the_lease_expires(settings):
    clock = FakeClock(datetime(2026, 7, 1, tzinfo=UTC))
    c = bootstrap(settings, clock=clock, jobs=InProcessJobQueue(threaded=False))
    store(c, 3)
    with c.uow() as uow:  # a worker claims, then is killed before completing anything
        assert len(uow.inbox.claim(10, clock.now(), inbox.CLAIM_LEASE)) == 3
        uow.commit()
    assert inbox.process_inbox(c.uow, c.handlers, clock).processed == 0  # still leased
    clock.advance(minutes=6)
    result = inbox.process_inbox(c.uow, c.handlers, clock)
    assert result.skipped == 3 and result.failed == 0
    with c.engine.connect() as conn:
        attempts = conn.exec_driver_sql("SELECT attempts FROM webhook_deliveries").scalars().all()
    assert attempts == [2, 2, 2]
    c.close()


def test_a_failing_handler_is_retried_then_parked_as_failed(container):
    store(container, 1, topic="app/uninstalled")
    calls = []

    def broken(uow, delivery, payload):
        calls.append(delivery.id)
        raise RuntimeError("boom")

    handlers = {"app/uninstalled": broken}
    clock = FakeClock()
    inbox.process_inbox(container.uow, handlers, clock)
    inbox.process_inbox(container.uow, handlers, clock)
    assert len(calls) == 1  # backed off: not retried in a hot loop
    for _ in range(MAX_ATTEMPTS):
        clock.advance(hours=1, seconds=1)
        inbox.process_inbox(container.uow, handlers, clock)
    assert len(calls) == MAX_ATTEMPTS
    assert statuses(container) == {"failed": 1}
    with container.engine.connect() as conn:
        error = conn.exec_driver_sql("SELECT last_error FROM webhook_deliveries").scalar_one()
    assert "RuntimeError: boom" in error
    clock.advance(hours=2)
    inbox.process_inbox(container.uow, handlers, clock)
    assert len(calls) == MAX_ATTEMPTS  # parked rows are not claimed again


def test_handler_effects_and_the_processed_mark_commit_together(container):
    """A crash inside the handler's transaction leaves no half-applied change."""
    store(container, 1, topic="app/uninstalled")

    def half_then_crash(uow, delivery, payload):
        uow.shops.save(Shop(id=None, domain="half.myshopify.com", status=ShopStatus.INSTALLED))
        raise RuntimeError("crash after a write")

    inbox.process_inbox(container.uow, {"app/uninstalled": half_then_crash}, container.clock)
    with container.uow() as uow:
        assert uow.shops.get("half.myshopify.com") is None
    assert statuses(container) == {"pending": 1}


def test_tokens_are_encrypted_at_rest(container):
    secret_access, secret_refresh = "shpat_" + uuid.uuid4().hex, "shprt_" + uuid.uuid4().hex
    token = OfflineToken(
        secret_access,
        "read_orders",
        datetime(2026, 7, 1, 13, tzinfo=UTC),
        secret_refresh,
        datetime(2026, 10, 1, tzinfo=UTC),
    )
    with container.uow() as uow:
        uow.shops.save(Shop(id=None, domain=SHOP, status=ShopStatus.INSTALLED, token=token))
        uow.commit()
    with container.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT * FROM shops").mappings().one()
    dump = json.dumps({k: str(v) for k, v in raw.items()})
    assert secret_access not in dump and secret_refresh not in dump
    with container.uow() as uow:
        assert uow.shops.get(SHOP).token == token


def test_trigger_coalesces_a_burst_into_one_job_and_a_worker_drains_everything(settings, redis_url):
    redis = Redis.from_url(redis_url)
    c = bootstrap(settings, jobs=RqJobQueue(redis), redis=redis)
    jobs.configure(c)
    try:
        for _ in range(50):
            accept_webhook(c.uow(), c.jobs, c.clock, hook())
        webhooks_queue = Queue("webhooks", connection=redis)
        assert webhooks_queue.count == 1
        SimpleWorker([webhooks_queue], connection=redis).work(burst=True)
        assert statuses(c) == {"skipped": 50}
        # the job acknowledged the trigger: the next webhook queues a new run
        accept_webhook(c.uow(), c.jobs, c.clock, hook())
        assert webhooks_queue.count == 1
    finally:
        jobs.configure(None)
        c.close()


def test_redis_down_webhook_is_still_accepted_and_the_sweeper_processes_it_later(
    settings, redis_url
):
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    c = bootstrap(settings, jobs=RqJobQueue(dead), redis=dead)
    accepted = accept_webhook(c.uow(), c.jobs, c.clock, hook())
    assert not accepted.duplicate
    assert statuses(c) == {"pending": 1}
    # Redis is back: the scheduled sweep finds the waiting row and queues a run
    redis = Redis.from_url(redis_url)
    c.jobs = RqJobQueue(redis)
    jobs.configure(c)
    try:
        assert inbox.sweep_inbox(c.uow, c.jobs, c.clock) is True
        SimpleWorker([Queue("webhooks", connection=redis)], connection=redis).work(burst=True)
        assert statuses(c) == {"skipped": 1}
        assert inbox.sweep_inbox(c.uow, c.jobs, c.clock) is False
    finally:
        jobs.configure(None)
        c.close()


def test_sqlite_embedded_mode_stores_and_processes_the_same_way(tmp_path):
    from entrypoints.cli import run_migrations
    from tests.conftest import make_settings

    url = f"sqlite:///{tmp_path}/embedded.sqlite3"
    run_migrations(url)
    c = bootstrap(make_settings(tmp_path, url), jobs=InProcessJobQueue(threaded=False))
    jobs.configure(c)
    try:
        h = hook()
        assert accept_webhook(c.uow(), c.jobs, c.clock, h).duplicate is False
        assert accept_webhook(c.uow(), c.jobs, c.clock, h).duplicate is True
        assert statuses(c) == {"skipped": 1}
        with c.uow() as uow:
            stats = uow.inbox.stats(c.clock.now())
        assert stats.pending == 0 and stats.last_received_at.tzinfo is not None
    finally:
        jobs.configure(None)
        c.close()


@pytest.mark.parametrize("n", [1, 250])
def test_drain_handles_batches_larger_and_smaller_than_one_claim(container, n):
    store(container, n)
    result = inbox.process_inbox(container.uow, container.handlers, container.clock)
    assert result.skipped == n
    assert result.batches == -(-n // inbox.BATCH_SIZE)
    with container.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM webhook_deliveries WHERE status='skipped'")
            ).scalar()
            == n
        )


def test_jobs_enumeration_is_complete():
    from adapters.queue.registry import JOBS

    assert set(JOBS) == set(Job)


def test_a_failed_job_does_not_block_its_id_for_the_next_run(redis_url):
    from rq.job import Job as RqJob
    from rq.job import JobStatus

    redis = Redis.from_url(redis_url)
    queue = RqJobQueue(redis)
    queue.enqueue(Job.SYNC_CODES, "x.myshopify.com", job_id="sync-codes:x")
    queue.enqueue(Job.SYNC_CODES, "x.myshopify.com", job_id="sync-codes:x")  # queued: kept
    default = Queue("default", connection=redis)
    assert default.count == 1
    job = RqJob.fetch("sync-codes_x", connection=redis)  # ':' is not allowed in RQ ids
    default.remove(job)
    job.set_status(JobStatus.FAILED)  # it ran and failed (kept for its failure_ttl)
    queue.enqueue(Job.SYNC_CODES, "x.myshopify.com", job_id="sync-codes:x")
    assert default.count == 1
    assert RqJob.fetch("sync-codes_x", connection=redis).get_status() == JobStatus.QUEUED


def test_enrolment_queues_its_code_sync_on_rq(settings, redis_url):
    """Job ids carry shop domains; RQ must accept them (a refused enqueue would be silent)."""
    from connector.domain.shops import Shop, ShopStatus
    from connector.services.ambassadors import enrol

    redis = Redis.from_url(redis_url)
    c = bootstrap(settings, jobs=RqJobQueue(redis), redis=redis)
    with c.uow() as uow:
        shop = uow.shops.save(Shop(None, SHOP, ShopStatus.INSTALLED))
        uow.commit()
    enrol(c.uow(), c.jobs, c.clock, shop, email="ava@example.com", first_name="Ava")
    enrol(c.uow(), c.jobs, c.clock, shop, email="leo@example.com", first_name="Leo")
    jobs_queued = Queue("default", connection=redis).jobs
    assert [j.func_name for j in jobs_queued] == [
        "entrypoints.jobs.sync_codes", "entrypoints.jobs.sync_customer_tags",
        "entrypoints.jobs.sync_salesforce"]  # once each (Salesforce: a no-op unless connected)
    assert all(j.args == (SHOP,) for j in jobs_queued)
    c.close()


# --- fairness across shops -------------------------------------------------------------------

BIG, SMALL = "big-shop.myshopify.com", ("small-a.myshopify.com", "small-b.myshopify.com")


def store_for(uow_factory, clock, shop: str, n: int) -> None:
    with uow_factory() as uow:
        for i in range(n):
            hook_ = hook("customers/update", {"id": i})
            uow.inbox.add(IncomingWebhook(hook_.topic, hook_.webhook_id, shop, hook_.body,
                                          "2026-07", None, None), clock.now())
        uow.commit()


def claimed_by_shop(uow_factory, clock, limit: int) -> dict[str, list[int]]:
    with uow_factory() as uow:
        batch = uow.inbox.claim(limit, clock.now(), timedelta(minutes=5))
        uow.commit()
    shops: dict[str, list[int]] = {}
    for d in batch:
        shops.setdefault(d.shop_domain, []).append(d.id)
    return shops


@pytest.fixture(params=["postgresql", "sqlite"])
def inbox_uow(request, container, tmp_path):
    """A unit-of-work factory on PostgreSQL (the session database) or on SQLite."""
    if request.param == "postgresql":
        yield container.uow, container.clock
        return
    from adapters.crypto import TokenCipher
    from adapters.db.engine import make_engine
    from adapters.db.tables import metadata
    from adapters.db.unit_of_work import SqlAlchemyUnitOfWork

    engine = make_engine(f"sqlite:///{tmp_path / 'inbox.sqlite3'}")
    metadata.create_all(engine)
    cipher = TokenCipher(container.settings.encryption_key)
    yield (lambda: SqlAlchemyUnitOfWork(engine, cipher, container.clock)), container.clock
    engine.dispose()


def test_a_claim_under_a_ten_to_one_backlog_gives_every_shop_its_share(inbox_uow):
    """The big shop's 1,000 deliveries came first; a FIFO claim of 200 would hold only them."""
    uow_factory, clock = inbox_uow
    store_for(uow_factory, clock, BIG, 1000)
    for shop in SMALL:
        store_for(uow_factory, clock, shop, 100)
    shops = claimed_by_shop(uow_factory, clock, 200)
    assert sum(map(len, shops.values())) == 200
    assert set(shops) == {BIG, *SMALL}
    assert all(len(ids) in (66, 67) for ids in shops.values())  # a third each
    with uow_factory() as uow:  # each shop's oldest deliveries first
        rest = uow.inbox.claim(1000, clock.now(), timedelta(minutes=5))
        uow.commit()
    for shop, ids in shops.items():
        later = [d.id for d in rest if d.shop_domain == shop]
        assert max(ids) < min(later)


def test_a_share_a_shop_leaves_unused_goes_to_the_others(inbox_uow):
    uow_factory, clock = inbox_uow
    store_for(uow_factory, clock, BIG, 500)
    store_for(uow_factory, clock, SMALL[0], 5)
    shops = claimed_by_shop(uow_factory, clock, 200)
    assert {s: len(ids) for s, ids in shops.items()} == {BIG: 195, SMALL[0]: 5}


def test_concurrent_fair_claims_take_every_row_of_every_shop_once(container):
    store_for(container.uow, container.clock, BIG, 150)
    for shop in SMALL:
        store_for(container.uow, container.clock, shop, 25)
    claimed: list[list[int]] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        while True:
            with container.uow() as uow:
                batch = uow.inbox.claim(30, container.clock.now(), timedelta(minutes=5))
                uow.commit()
            if not batch:
                return
            claimed.append([d.id for d in batch])

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [i for batch in claimed for i in batch]
    assert len(all_ids) == len(set(all_ids)) == 200


def test_a_batch_whose_transaction_failed_is_released_by_the_next_drain(settings):
    """E.g. the database went away mid-batch: the claim committed, the batch did not. The rows
    must not wait out their 5-minute lease when the same process drains again."""
    clock = FakeClock(datetime(2026, 7, 1, tzinfo=UTC))
    c = bootstrap(settings, clock=clock, jobs=InProcessJobQueue(threaded=False))
    store(c, 3)
    calls = {"n": 0}

    def failing_second_uow():
        calls["n"] += 1
        if calls["n"] == 2:  # the batch's unit of work: the connection is lost
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return c.uow()

    with pytest.raises(sa.exc.OperationalError):
        inbox.process_inbox(failing_second_uow, c.handlers, clock)
    assert statuses(c) == {"processing": 3}
    result = inbox.process_inbox(c.uow, c.handlers, clock)  # no time has passed
    assert result.skipped == 3 and statuses(c) == {"skipped": 3}
    c.close()


def test_with_several_shops_waiting_a_batch_is_short_and_fair(inbox_uow):
    """``shared_limit`` caps the batch only when more than one shop has work."""
    uow_factory, clock = inbox_uow
    store_for(uow_factory, clock, BIG, 300)
    with uow_factory() as uow:
        alone = uow.inbox.claim(200, clock.now(), timedelta(minutes=5), shared_limit=40)
        uow.commit()
    assert len(alone) == 200
    store_for(uow_factory, clock, SMALL[0], 3)
    store_for(uow_factory, clock, SMALL[1], 30)
    with uow_factory() as uow:
        batch = uow.inbox.claim(200, clock.now(), timedelta(minutes=5), shared_limit=40)
        uow.commit()
    counts = {shop: sum(1 for d in batch if d.shop_domain == shop) for shop in (BIG, *SMALL)}
    assert counts == {BIG: 23, SMALL[0]: 3, SMALL[1]: 14}  # shares of 14, unused ones to BIG


def test_a_shop_whose_rows_are_all_leased_is_not_waiting(inbox_uow):
    uow_factory, clock = inbox_uow
    store_for(uow_factory, clock, SMALL[0], 5)
    claimed_by_shop(uow_factory, clock, 5)  # leased by another worker
    store_for(uow_factory, clock, BIG, 300)
    with uow_factory() as uow:
        batch = uow.inbox.claim(200, clock.now(), timedelta(minutes=5), shared_limit=40)
        uow.commit()
    assert len(batch) == 200 and {d.shop_domain for d in batch} == {BIG}


def test_a_drain_keeps_short_batches_for_a_while_after_several_shops_waited(container):
    """The big shop alone again after a shared batch: still short batches within the window,
    so a small shop's next delivery does not wait behind a full one."""
    c, clock = container, container.clock
    store_for(c.uow, clock, BIG, 300)
    store_for(c.uow, clock, SMALL[0], 2)
    result = inbox.process_inbox(c.uow, c.handlers, clock, batch_size=200, shared_batch_size=40)
    assert result.processed + result.skipped == 302
    assert result.batches == 8  # ceil(302 / 40); a FakeClock never leaves the window
    store_for(c.uow, clock, BIG, 300)  # a new drain, one shop: full batches
    result = inbox.process_inbox(c.uow, c.handlers, clock, batch_size=200, shared_batch_size=40)
    assert result.batches == 2
