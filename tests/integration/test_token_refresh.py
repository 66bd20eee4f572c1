"""Expiring offline tokens: refreshed before expiry, one refresher per shop at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from adapters.bootstrap import bootstrap
from adapters.queue.inprocess import InProcessJobQueue
from connector.domain.shops import OfflineToken, Shop, ShopStatus
from connector.services import installation
from tests.conftest import SHOP
from tests.fakes import FakeCommercePlatform


@pytest.fixture
def platform():
    return FakeCommercePlatform(refresh_delay=0.3)


@pytest.fixture
def c(settings, platform):
    container = bootstrap(settings, shopify=platform, jobs=InProcessJobQueue(threaded=False))
    yield container
    container.close()


def save_token(c, expires_in: timedelta, refresh_expires_in=timedelta(days=90)):
    now = datetime.now(UTC)
    token = OfflineToken(
        "shpat_old", "read_orders", now + expires_in, "shprt_old", now + refresh_expires_in
    )
    with c.uow() as uow:
        uow.shops.save(
            Shop(id=None, domain=SHOP, status=ShopStatus.INSTALLED, token=token, installed_at=now)
        )
        uow.commit()


def test_racing_workers_refresh_once_and_all_get_the_new_token(c, platform):
    save_token(c, timedelta(minutes=2))  # inside the 5-minute refresh margin
    results: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append(installation.access_token(c.uow, c.shopify, c.clock, SHOP))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert platform.refreshes == ["shprt_old"]  # the single-use refresh token was spent once
    assert len(set(results)) == 1 and results[0] != "shpat_old"
    with c.uow() as uow:
        assert uow.shops.get(SHOP).token.refresh_token != "shprt_old"


def test_a_fresh_token_is_used_without_refreshing(c, platform):
    save_token(c, timedelta(minutes=50))
    assert installation.access_token(c.uow, c.shopify, c.clock, SHOP) == "shpat_old"
    assert platform.refreshes == []


def test_the_scheduled_job_refreshes_tokens_before_they_expire(c, platform):
    save_token(c, timedelta(minutes=10))
    assert installation.refresh_expiring_tokens(c.uow, c.shopify, c.clock) == 1
    assert platform.refreshes == ["shprt_old"]
    assert installation.refresh_expiring_tokens(c.uow, c.shopify, c.clock) == 0


def test_a_revoked_refresh_token_drops_the_token_and_says_not_installed(c, platform):
    save_token(c, timedelta(seconds=-1))
    platform.revoked = True
    with pytest.raises(installation.NotInstalled):
        installation.access_token(c.uow, c.shopify, c.clock, SHOP)
    with c.uow() as uow:
        assert uow.shops.get(SHOP).token is None
    with pytest.raises(installation.NotInstalled):  # and we stop calling Shopify about it
        installation.access_token(c.uow, c.shopify, c.clock, SHOP)
    assert len(platform.refreshes) == 1


def test_an_expired_refresh_token_means_the_merchant_must_open_the_app(c, platform):
    save_token(c, timedelta(seconds=-1), refresh_expires_in=timedelta(seconds=-1))
    with pytest.raises(installation.NotInstalled):
        installation.access_token(c.uow, c.shopify, c.clock, SHOP)
    assert platform.refreshes == []
