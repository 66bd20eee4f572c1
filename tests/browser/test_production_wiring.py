"""One journey against the production wiring instead of the demo's: the app served by
``ambassador serve`` (gunicorn, two workers) with an ``ambassador worker`` on RQ (a
redis-server of the test's own), on a fresh PostgreSQL database, the Shopify emulator as the
store. The merchant's browser frames the app as the Shopify admin does, with the id token
Shopify puts in the address; App Bridge (Shopify's CDN, unreachable here) is replaced by a
stand-in whose ``shopify.idToken()`` hands out session tokens the emulator mints, as App Bridge
would. A friend checks out with an ambassador's code in the emulator's store; the signed
webhooks go to gunicorn, the worker applies them, and the dashboard moves.

gunicorn runs two workers here, as on a small dyno: with sync workers Chromium's speculative idle
connections held both and the page never loaded; ``ambassador serve`` runs threaded workers
(gthread) so an idle connection holds one thread, not a worker."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from tests.browser.conftest import TIMEOUT_MS, Admin, _free_port, _session
from tests.conftest import API_KEY, API_SECRET
from tests.faults.harness import App, PrivateRedis, Store

SHOP = "production-shop.myshopify.com"
APP_BRIDGE = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
# The stand-in for App Bridge: only what admin.js uses (an id token per call).
APP_BRIDGE_STAND_IN = "window.shopify = { idToken: () => window.__mintSessionToken() };"


@pytest.fixture
def production(pg_server_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread

    name = f"ambassador_production_{os.getpid()}"
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    port = _free_port()
    emulator = ShopifyEmulator(API_KEY, API_SECRET, app_url=f"http://127.0.0.1:{port}")
    emulator.add_shop(SHOP, currency="USD", name="Production Shop")
    server, emulator_url = serve_in_thread(emulator)
    redis = PrivateRedis()
    app: App | None = None
    try:
        app = App(url, redis.url, emulator_url, port, tmp_path)
        app.start_web(workers=2)
        app.start_worker()
        store = Store(emulator, app.url, SHOP)
        store.install()
        store.enrol(2)
        yield {"app_url": app.url, "emulator_url": emulator_url, "emulator": emulator,
               "store": store, "app": app}
    finally:
        if app is not None:
            app.stop()
        redis.destroy()
        server.shutdown()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _open_framed(session: Admin, emulator: Any, path: str) -> Any:
    """The app in an iframe of a stand-in admin page (another origin), opened as the Shopify
    admin opens it: ``shop``, ``host`` and a fresh ``id_token`` in the address."""
    port = session.app_url.rsplit(":", 1)[1]
    inner = f"{session.app_url}{path}?" + urlencode(
        {"shop": SHOP, "host": "YWRtaW4", "id_token": emulator.mint_session_token(SHOP)})
    session.page.route(f"http://localhost:{port}/__admin__", lambda route: route.fulfill(
        status=200, content_type="text/html",
        body=f'<!doctype html><title>Shopify admin</title><iframe id="app" src="{inner}"'
             ' style="width:1200px;height:850px;border:0"></iframe>'))
    session.page.goto(f"http://localhost:{port}/__admin__")
    return session.page.frame_locator("#app")


def test_an_order_at_the_checkout_moves_the_dashboard_with_gunicorn_and_an_rq_worker(
    production: dict[str, Any], chromium: Any
) -> None:
    emulator = production["emulator"]
    session = _session(production, chromium, "production-wiring")
    try:
        session.context.expose_binding(
            "__mintSessionToken", lambda _source: emulator.mint_session_token(SHOP))
        session.context.route(APP_BRIDGE, lambda route: route.fulfill(
            status=200, content_type="text/javascript", body=APP_BRIDGE_STAND_IN))

        def frameable(route: Any) -> None:
            # The app's CSP lets only Shopify's admin frame it: this stand-in admin drops that
            # header from the app's pages (and nothing else).
            if route.request.resource_type != "document":
                route.fallback()
                return
            response = route.fetch()
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() != "content-security-policy"}
            route.fulfill(response=response, headers=headers)

        session.page.route(re.compile(r"^http://127\.0\.0\.1:\d+/app[/?]"), frameable)

        frame = _open_framed(session, emulator, "/app")
        frame.locator("#kpi-orders").filter(has_text=re.compile(r"^\d+$")).wait_for()
        before = int(frame.locator("#kpi-orders").inner_text())
        assert (frame.locator("#ac-error").text_content() or "").strip() == ""
        session.shot("dashboard-before")

        frame = _open_framed(session, emulator, "/app/ambassadors")
        code = frame.locator("#ac-rows code").first.inner_text()
        assert code in production["store"].codes

        shop_page = session.context.new_page()
        shop_page.goto(f"{production['emulator_url']}/{SHOP}/discount/{code}?redirect=/")
        shop_page.fill("input[name=email]", "production.friend@example.com")
        shop_page.fill("input[name=first_name]", "Friend")
        shop_page.locator("button", has_text="Place order").click()
        shop_page.wait_for_selector("text=Thank you!")
        shop_page.close()

        # The webhooks reach gunicorn, the RQ worker applies them: the dashboard moves.
        deadline = time.monotonic() + 3 * TIMEOUT_MS / 1000
        after = before
        while after <= before and time.monotonic() < deadline:
            frame = _open_framed(session, emulator, "/app")
            frame.locator("#kpi-orders").filter(has_text=re.compile(r"^\d+$")).wait_for()
            after = int(frame.locator("#kpi-orders").inner_text())
            if after <= before:
                time.sleep(0.5)
        assert after == before + 1, production["app"].logs("worker")
        frame.locator("#trend-summary").filter(has_text=f"{after} orders").wait_for()
        assert (frame.locator("#ac-error").text_content() or "").strip() == ""
        session.shot("dashboard-after")
        # Every API call went through App Bridge's stand-in: nothing reached Shopify's CDN.
        assert not any("cdn.shopify.com" in url for url in session.blocked), session.blocked
    finally:
        session.context.close()
    assert not session.errors, "console errors:\n" + "\n".join(session.errors)
