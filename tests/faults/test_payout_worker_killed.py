"""Fault injection on fulfilment: the real ``ambassador worker`` (RQ, PostgreSQL, the Shopify
emulator over HTTP) dies at each step of a payout — after claiming it, after Shopify created
the gift card but before our commit, after the commit — as ``kill -9`` would (the
``AMBASSADOR_FAILPOINTS`` test hook exits the process on the spot). Then the operator's platform
recovers: the claim's lease runs out, the sweeper queues the payout again, a fresh worker runs.
The same job is also queued twice. Afterwards Shopify holds exactly one gift card per payout.

Run with ``make test-faults`` (also part of ``make test``).
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from adapters.db.tables import payouts
from adapters.queue.rq_queue import RqJobQueue
from connector.ports import Job
from connector.services import attribution
from connector.services import payouts as service
from tests.conftest import REDIS_URL, SHOP

pytestmark = pytest.mark.faults

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def worker(live, tmp_path: Path, failpoint: str | None) -> int:
    """One burst of the real worker on the test Redis; returns its exit code."""
    settings = live.container.settings
    env = {
        "PATH": str(VENV_BIN) + ":/usr/bin:/bin",
        "APP_ENV": "test",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": REDIS_URL,
        "INSTANCE_PATH": str(settings.instance_path),  # the same generated secrets
        "SHOPIFY_API_KEY": settings.shopify_api_key,
        "SHOPIFY_API_SECRET": settings.shopify_api_secret,
        "SHOPIFY_API_BASE_URL": settings.shopify_api_base_url or "",
        "APP_URL": settings.app_url,
        "LOG_LEVEL": "WARNING",
    }
    if failpoint:
        env["AMBASSADOR_FAILPOINTS"] = failpoint
    with (tmp_path / "worker.log").open("ab") as log:
        return subprocess.run(
            [str(VENV_BIN / "ambassador"), "worker", "--burst"],
            env=env, stdout=log, stderr=subprocess.STDOUT, timeout=120,
        ).returncode


def payout_row(live, payout_id: int):
    with live.container.engine.connect() as conn:
        return conn.execute(sa.select(payouts).where(payouts.c.id == payout_id)).one()


@pytest.mark.parametrize("failpoint", ["payout.claimed", "payout.issued", "payout.recorded"])
def test_a_worker_killed_at_each_step_delivers_the_gift_card_once(live, tmp_path, failpoint):
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    rq = RqJobQueue(client)
    live.install()
    live.api("PATCH", "/program/settings",
             json={"hold_days": 0, "payouts": {"form": "gift_card", "merchant_approval": True}})
    customer = live.emulator.add_customer(SHOP, email="ava@example.com", first_name="Ava")
    ambassador = live.api("POST", "/ambassadors",
                          json={"customer_id": customer["admin_graphql_api_id"]}).json()
    live.emulator.checkout(SHOP, customer_email="friend@example.com",
                           discount_codes=[ambassador["code"]],
                           line_items=[{"title": "Rain Shell", "price": "100.00", "quantity": 2}])
    attribution.approve_due_rewards(live.container.uow, live.container.clock)
    report = service.run_payouts(live.container.uow, rq, live.container.clock, SHOP,
                                 period="2026-12")
    assert report.created == 1
    payout_id = payout_row_id(live)
    # The merchant approves: the fulfilment job goes to RQ, for the real worker.
    service.approve(live.container.uow, rq, SHOP, [payout_id], "merchant")
    started = time.monotonic()
    code = worker(live, tmp_path, failpoint)
    cards = live.emulator.shop(SHOP).gift_cards
    state = payout_row(live, payout_id).state
    if failpoint == "payout.claimed":
        assert (state, len(cards)) == ("fulfilling", 0)
    elif failpoint == "payout.issued":
        assert (state, len(cards)) == ("fulfilling", 1)  # Shopify has it, we do not know yet
    else:
        assert (state, len(cards)) == ("fulfilled", 1)
    assert code == 137  # the worker died on the spot, as under kill -9
    # Recovery: the lease runs out, the sweeper queues the payout, a fresh worker runs —
    # and the same job is queued a second time for good measure.
    with live.container.engine.begin() as conn:
        conn.execute(sa.update(payouts).where(payouts.c.id == payout_id)
                     .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    client.flushdb()  # the dead horse's job and its retry: gone with the worker
    queued = service.fulfil_due(live.container.uow, rq, live.container.clock)
    rq.enqueue(Job.FULFIL_PAYOUT, SHOP, payout_id, job_id=f"duplicate-{payout_id}")
    assert worker(live, tmp_path, None) == 0
    recovered = time.monotonic() - started
    row = payout_row(live, payout_id)
    assert row.state == "fulfilled", (tmp_path / "worker.log").read_text()[-2000:]
    assert len(live.emulator.shop(SHOP).gift_cards) == 1
    card = next(iter(live.emulator.shop(SHOP).gift_cards.values()))
    assert card.note == row.idempotency_key and row.external_id.endswith(f"/{card.id}")
    assert queued == (0 if failpoint == "payout.recorded" else 1)
    client.flushdb()
    print(f"\n{failpoint}: killed, recovered and delivered once in {recovered:.1f} s "
          f"({row.attempts} attempt(s))")


def payout_row_id(live) -> int:
    with live.container.engine.connect() as conn:
        return conn.execute(sa.select(payouts.c.id)).scalar_one()
