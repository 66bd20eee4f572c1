"""Fault injection at the platforms: the Shopify emulator answers with THROTTLED, 429, 5xx,
timeouts and connection resets, before carrying a request out and (the case that turns a
client's retry into a second mutation) after carrying it out with the answer lost, at random
moments while the app issues codes and while it reconciles missed orders; the Salesforce
emulator fails calls (5xx, row locks), records, sessions and whole periods while the app syncs
Contacts. The work is re-run the way the jobs' retries re-run it, until it completes.

Afterwards: every ambassador holds exactly one code in Shopify, on the one shared discount, and
Shopify holds no code of ours nobody owns (no duplicate codes); each order's ledger equals the
reward of its final state; each ambassador has exactly one Contact (no duplicate Contacts).
"""

from __future__ import annotations

import base64
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import API_KEY, API_SECRET, SHOP, make_settings

pytestmark = pytest.mark.faults

CLIENT_TIMEOUT = httpx.Timeout(2.0, connect=1.0)  # the test's client gives up sooner than 20 s
FAULT_DELAY = 3.0  # an injected timeout answers after this: longer than the client waits


class ShopifyChaos:
    """A thread that keeps arming one random fault of the emulator at random moments."""

    KINDS = ("throttled", "429", "5xx", "timeout", "reset")

    def __init__(self, emulator: Any, rng: random.Random, every: tuple[float, float]) -> None:
        self.emulator, self.rng, self.every = emulator, rng, every
        self.armed: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(*self.every)):
            if self.emulator.armed_faults:
                continue  # the previous one has not struck yet
            kind = self.rng.choice(self.KINDS)
            after = kind in ("5xx", "timeout", "reset") and self.rng.random() < 0.5
            self.emulator.set_fault(kind, 1, retry_after=1, status=self.rng.choice([500, 502, 503]),
                                    delay=FAULT_DELAY, after=after)
            self.armed[kind + (" (answer lost)" if after else "")] += 1

    @contextmanager
    def running(self) -> Iterator[ShopifyChaos]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()
            self.emulator.clear_faults()


def until_done(work: Callable[[], bool], attempts: int = 60) -> tuple[int, list[str]]:
    """Run ``work`` as a job with retries would, until it reports done; (runs, errors)."""
    from connector.ports import PlatformError

    errors: list[str] = []
    for run in range(1, attempts + 1):
        try:
            if work():
                return run, errors
        except PlatformError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    pytest.fail(f"not done after {attempts} runs: {errors[-5:]}")


@pytest.fixture
def shopify(tmp_path: Path, db_url: str) -> Iterator[tuple[Any, Any]]:
    """The app's container (inline jobs, a short HTTP timeout) and the Shopify emulator."""
    from adapters.bootstrap import bootstrap
    from adapters.queue.inprocess import InProcessJobQueue
    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread
    from adapters.shopify.http import make_http_client
    from connector.domain.shops import OfflineToken, Shop, ShopStatus

    emulator = ShopifyEmulator(API_KEY, API_SECRET, app_url=None, bulk_delay=0.05,
                               webhook_mode="manual")
    emulator.add_shop(SHOP, currency="USD")
    server, emu_url = serve_in_thread(emulator)
    settings = make_settings(
        tmp_path, db_url, SHOPIFY_API_BASE_URL=emu_url,
        ENCRYPTION_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
    container = bootstrap(settings, jobs=InProcessJobQueue(threaded=False),
                          shopify_http=make_http_client(emu_url, CLIENT_TIMEOUT))
    token = emulator.issue_access_token(SHOP, expiring=False)
    with container.uow() as uow:
        uow.shops.save(Shop(None, SHOP, ShopStatus.INSTALLED,
                            token=OfflineToken(token["access_token"], token["scope"], None, None,
                                               None),
                            name=SHOP, currency="USD",
                            installed_at=datetime.now(UTC) - timedelta(days=1)))
        uow.commit()
    yield container, emulator
    server.shutdown()
    container.close()


def shop_id(container: Any) -> int:
    with container.uow() as uow:
        shop = uow.shops.get(SHOP)
    assert shop is not None and shop.id is not None
    return int(shop.id)


def test_codes_issued_under_shopify_faults_are_neither_lost_nor_duplicated(shopify):
    from bench.code_issuance import insert_ambassadors
    from connector.services import codes

    container, emulator = shopify
    n = 300
    insert_ambassadors(container.engine, shop_id(container), n, "FLT")
    rng = random.Random(20261205)

    def sync() -> bool:
        codes.sync_codes(container.uow, container.discounts, container.access_token,
                         container.clock, SHOP, batch=100)
        return pending_codes(container) == 0

    started = time.monotonic()
    emulator.set_fault("5xx", 1, status=502, after=True)  # the discount's create: answer lost
    with ShopifyChaos(emulator, rng, (0.2, 1.0)).running() as chaos:
        runs, errors = until_done(sync)
    elapsed = time.monotonic() - started
    again = codes.sync_codes(container.uow, container.discounts, container.access_token,
                             container.clock, SHOP)
    assert (again.added, again.removed, again.errors) == (0, 0, [])

    faults = Counter(c["fault"] for c in emulator.graphql_calls if c["fault"])
    state = emulator.shop(SHOP)
    with container.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT code, redeem_code_gid, discount_gid FROM ambassadors"
            " WHERE code_state = 'active'")).all()
    ours = {r.code.upper(): r for r in rows}
    in_shopify = {c.code.upper(): c for c in state.redeem_codes.values()}
    assert len(rows) == n, "an ambassador has no code"
    assert len(state.discounts) == 1, f"{len(state.discounts)} discounts: a create was repeated"
    orphans = set(in_shopify) - set(ours)
    assert not orphans, f"{len(orphans)} codes in Shopify that no ambassador owns: {orphans}"
    assert set(in_shopify) == set(ours)
    for code, row in ours.items():
        assert row.redeem_code_gid.endswith(f"/{in_shopify[code].id}"), code
    print(f"\n{n} codes issued in {elapsed:.1f} s under faults ({runs} runs, "
          f"{len(errors)} ended by a fault); armed: {dict(chaos.armed)}; answered by a fault: "
          f"{dict(faults)}; Shopify holds {len(in_shopify)} codes on {len(state.discounts)} "
          "discount: no duplicate, no orphan")


def pending_codes(container: Any) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM ambassadors WHERE code_state <> 'active'")).scalar_one())


def test_codes_added_again_after_a_lost_answer_are_recognised_as_ours(shopify):
    """The add of new codes is carried out but its answer is lost (a reset); the client sends
    it again and Shopify refuses the codes as taken: by our own discount. They are confirmed,
    not moved to other codes (which would leave these in Shopify, owned by no one)."""
    import sqlalchemy as sa

    from bench.code_issuance import insert_ambassadors
    from connector.services import codes

    container, emulator = shopify
    insert_ambassadors(container.engine, shop_id(container), 3, "ONE")
    codes.sync_codes(container.uow, container.discounts, container.access_token,
                     container.clock, SHOP)
    insert_ambassadors(container.engine, shop_id(container), 3, "TWO")
    emulator.set_fault("reset", 1, after=True)
    report = codes.sync_codes(container.uow, container.discounts, container.access_token,
                              container.clock, SHOP)
    assert emulator.armed_faults == 0  # the fault struck
    assert (report.added, report.collisions, report.errors) == (3, 0, [])
    with container.engine.connect() as conn:
        ours = set(conn.execute(sa.text(
            "SELECT code FROM ambassadors WHERE code_state = 'active'")).scalars())
    in_shopify = {c.code for c in emulator.shop(SHOP).redeem_codes.values()}
    assert ours == in_shopify and len(ours) == 6
