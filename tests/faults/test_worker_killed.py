"""Fault injection: ``kill -9`` of the real worker process at random points while it drains
10,000 order events (the benchmark's realistic mix: duplicates, reordering, refunds before their
orders, cancellations), then the recovery an operator's platform performs: the leases of the
killed worker's rows expire and the sweeper queues the drain again.

Afterwards the ledger must equal the one a single uninterrupted drain produces from the same
inbox (sums per ambassador and order, explanations, statistics, holds, delivery statuses):
every accepted webhook applied exactly once, nothing lost, nothing doubled. The recovery time
after each kill is printed.

Run with ``make test-faults`` (also part of ``make test``).
"""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import redis

from bench import attribution_throughput as mix_source
from bench.common import app_env, databases, dbname, libpq, sqlalchemy_url
from tests.conftest import BASE_URL, REDIS_URL

pytestmark = pytest.mark.faults

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
EVENTS = 10_000
KILLS = 5


def pending(db_url: str) -> int:
    with psycopg.connect(libpq(db_url)) as conn:
        return conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'processing')"
        ).fetchone()[0]  # type: ignore[index]


def expire_leases(db_url: str) -> int:
    """What the passing of CLAIM_LEASE does to the rows a killed worker held."""
    with psycopg.connect(libpq(db_url)) as conn:
        return conn.execute(
            "UPDATE webhook_deliveries SET locked_until = now() - interval '1 second'"
            " WHERE status = 'processing'"
        ).rowcount


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(VENV_BIN / "ambassador"), "worker", "--burst"],
        env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def sweep(client: redis.Redis) -> None:
    """The scheduled sweeper's action: a plain enqueue of the drain."""
    from adapters.queue.rq_queue import RqJobQueue
    from connector.ports import Job

    RqJobQueue(client).enqueue(Job.PROCESS_INBOX)


def test_kill_minus_nine_mid_drain_loses_and_doubles_nothing(tmp_path):
    from adapters.clock import SystemClock
    from adapters.crypto import TokenCipher
    from adapters.db.engine import make_engine
    from adapters.db.unit_of_work import SqlAlchemyUnitOfWork
    from connector.services.handlers import build_handlers
    from connector.services.inbox import process_inbox

    rng = random.Random(20261122)
    ambassadors = mix_source.make_ambassadors(rng)
    mix = mix_source.EventBuilder(ambassadors, 20261123).build(EVENTS)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    with databases(libpq(BASE_URL)) as make_db:
        template = make_db("faults_template")
        env = app_env(template, REDIS_URL, tmp_path, LOG_LEVEL="WARNING")
        mix_source.seed(template, env["ENCRYPTION_KEY"], ambassadors, mix)
        chaos = make_db("faults_chaos", template=dbname(template))
        reference = make_db("faults_reference", template=dbname(template))

        # The reference: one uninterrupted drain, in this process.
        engine = make_engine(sqlalchemy_url(reference))
        clock, cipher = SystemClock(), TokenCipher(env["ENCRYPTION_KEY"])
        try:
            process_inbox(lambda: SqlAlchemyUnitOfWork(engine, cipher, clock),
                          build_handlers(clock), clock)
        finally:
            engine.dispose()

        # The chaos run: the real worker, killed with SIGKILL at random moments.
        worker_env = {**env, "DATABASE_URL": chaos}
        log = tmp_path / "worker.log"
        sweep(client)
        recoveries = []
        for _ in range(KILLS):
            worker = start_worker(worker_env, log)
            time.sleep(rng.uniform(1.0, 4.0))  # start-up takes ~1 s; then it is mid-batch
            worker.kill()
            worker.wait()
            left = pending(chaos)
            if not left:
                break
            killed_at = time.monotonic()
            held = expire_leases(chaos)
            client.flushdb()  # the killed job's registries: gone with the worker
            sweep(client)
            recoveries.append((held, left, killed_at))
        worker = start_worker(worker_env, log)
        try:
            worker.wait(timeout=300)
        finally:
            if worker.poll() is None:
                worker.kill()
        finished = time.monotonic()
        client.flushdb()

        assert pending(chaos) == 0, log.read_text(errors="replace")[-3000:]
        check = mix_source.compare(mix_source.ledger(chaos), mix_source.ledger(reference))
        assert not check.differences, check.differences
        assert check.entries > 1000  # a real ledger was compared
        with psycopg.connect(libpq(chaos)) as conn:
            attempts = conn.execute(
                "SELECT max(attempts), count(*) FILTER (WHERE attempts > 1)"
                " FROM webhook_deliveries"
            ).fetchone()
        print(
            f"\n{len(recoveries)} kills; rows re-claimed after a kill: {attempts[1]:,}; "
            f"most claims of one row: {attempts[0]}; drained {finished - recoveries[0][2]:.1f} s "
            "after the first kill" if recoveries else "\nthe worker finished before a kill"
        )
        assert recoveries, "no kill landed mid-drain: the test proved nothing"
