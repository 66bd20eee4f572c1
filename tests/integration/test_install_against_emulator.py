"""Install journeys over HTTP against the Shopify emulator (the same code paths as Shopify)."""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import sqlalchemy as sa

from connector.domain.webhooks import SUBSCRIBED_TOPICS
from connector.services import installation
from tests.conftest import SHOP

SUBSCRIBED = {t.value for t in SUBSCRIBED_TOPICS}


def test_token_exchange_install_registers_webhooks_and_stores_an_expiring_token(live):
    live.install()
    with live.container.uow() as uow:
        shop = uow.shops.get(SHOP)
    assert shop.installed and shop.name == "Test Shop" and shop.currency == "USD"
    assert shop.token.expires_at is not None and shop.token.refresh_token
    subscriptions = live.emulator.shop(SHOP).webhook_subscriptions.values()
    assert {(s.topic, s.uri) for s in subscriptions} == {
        (topic, f"{live.url}/webhooks/shopify") for topic in SUBSCRIBED
    }
    assert live.emulator.token_requests == ["token_exchange"]
    live.install()  # opening the app again exchanges nothing
    assert len(live.emulator.token_requests) == 1


def test_the_install_link_round_trip_through_the_emulator(live):
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        start = browser.get(f"{live.url}/auth", params={"shop": SHOP})
        assert start.status_code == 302
        approve = browser.get(start.headers["Location"])  # the merchant approves in Shopify
        assert approve.status_code == 302
        callback = approve.headers["Location"]
        assert callback.startswith(f"{live.url}/auth/callback")
        done = browser.get(callback)
        assert done.status_code == 302, done.text[:300]
        replay = browser.get(callback)  # the same callback again: the state is spent
        assert replay.status_code == 400
    with live.container.uow() as uow:
        assert uow.shops.get(SHOP).installed
    query = parse_qs(urlparse(callback).query)
    assert len(query["state"][0]) >= 22


def test_refresh_against_the_emulator_rotates_the_single_use_refresh_token(live):
    live.install()
    c = live.container
    with c.uow() as uow:
        before = uow.shops.get(SHOP).token
    with c.engine.begin() as conn:  # the token is now one minute from expiry
        conn.execute(
            sa.text("UPDATE shops SET access_token_expires_at = :t"),
            {"t": c.clock.now() + timedelta(minutes=1)},
        )
    barrier = threading.Barrier(3)
    tokens: list[str] = []

    def use_the_api() -> None:
        barrier.wait()
        tokens.append(installation.access_token(c.uow, c.shopify, c.clock, SHOP))

    threads = [threading.Thread(target=use_the_api) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert live.emulator.token_requests == [
        "token_exchange",
        "refresh_token",
    ]  # one refresh for three callers
    assert len(tokens) == 3 and len(set(tokens)) == 1 and tokens[0] != before.access_token
    with c.uow() as uow:
        after = uow.shops.get(SHOP).token
    assert after.refresh_token != before.refresh_token
    assert c.shopify.shop_info(SHOP, after.access_token).name == "Test Shop"  # and it works


def test_uninstall_from_shopify_then_reinstall(live):
    live.install()
    live.emulator.uninstall(SHOP)  # sends a signed app/uninstalled to the live app
    with live.container.uow() as uow:
        assert not uow.shops.get(SHOP).installed
    live.install()
    with live.container.uow() as uow:
        shop = uow.shops.get(SHOP)
    assert shop.installed and shop.webhooks_registered_at is not None
