"""`ambassador demo` builds the whole system with nothing but Python (SQLite, in-process jobs,
the Shopify emulator) and installs the demo store through the real app home."""

from __future__ import annotations

import socket

import httpx

from entrypoints.demo import run_demo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_demo_installs_the_store_and_receives_its_orders(tmp_path):
    urls = run_demo(
        port=free_port(),
        emulator_port=free_port(),
        customers=8,
        instance=tmp_path / "demo",
        serve_forever=False,
        keep_running=True,
    )
    try:
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(urls["admin"])
            assert page.status_code == 200
            assert "Summit Outfitters (demo)" in page.text and "installed" in page.text
            assert browser.get(urls["health"]).json()["status"] == "ok"
            state = browser.get(urls["emulator"]).json()
        shop = state["shops"]["demo-store.myshopify.com"]
        assert shop["installed"] and shop["webhook_subscriptions"] == 7
        assert state["token_requests"] == ["token_exchange"]
        assert state["failed_deliveries"] == 0 and state["deliveries"] >= 8
        # the seeded payout run: store credit (with its bonus) and a gift card delivered in the
        # emulated store, a cash payout waiting for the merchant's approval
        assert shop["gift_cards"] == 1 and shop["store_credit_accounts"] >= 1
    finally:
        urls["stop"]()
