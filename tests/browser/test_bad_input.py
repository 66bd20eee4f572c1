"""Bad input in the browser: names with markup stay text, very long values do not break the
layout, a shop with no ambassadors gets empty states, API failures become messages (never a
blank page), and a session token that expires mid-session is renewed without the merchant
noticing."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.browser.conftest import SHOP, Admin

MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
LONG = "W" * 120  # the name columns' limit, one unbroken word


def api(admin: Admin, method: str, path: str, **kwargs: Any) -> httpx.Response:
    token = admin.demo["shopify_emulator"].mint_session_token(SHOP)
    return httpx.request(method, f"{admin.app_url}/api/v1{path}", timeout=60,
                         headers={"Authorization": f"Bearer {token}"}, **kwargs)


def no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"))


def test_names_with_markup_are_shown_as_text_and_long_values_wrap(admin: Admin) -> None:
    made = api(admin, "POST", "/ambassadors", json={
        "email": "markup.person@example.com", "first_name": MARKUP, "last_name": LONG})
    assert made.status_code == 201, made.text
    ambassador = made.json()
    assert ambassador["first_name"] == MARKUP  # stored as typed: escaping is the page's job

    page = admin.open(f"/app/ambassadors/{ambassador['id']}")
    admin.wait_text("#a-name", re.escape(LONG))
    assert page.locator("#a-name").inner_text() == f"{MARKUP} {LONG}"
    assert page.locator("#a-name img, #a-name script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert no_horizontal_overflow(page)
    admin.shot("detail")

    page = admin.open("/app/ambassadors", q="markup.person")
    admin.wait_text("#ac-rows", re.escape(LONG))
    assert page.locator("#ac-rows img, #ac-rows script").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert no_horizontal_overflow(page)
    admin.shot("list")

    # A search longer than anything stored: answered (nothing matches), not an error.
    page = admin.open("/app/ambassadors", q="x" * 5000)
    admin.wait_text("#ac-rows", r"No ambassadors match|Loading")
    assert admin.error_banner() == ""


def test_a_shop_without_ambassadors_shows_empty_states(admin: Admin) -> None:
    shop = "empty-store.myshopify.com"
    admin.demo["shopify_emulator"].add_shop(shop, currency="EUR", name="Empty Store")
    page = admin.page
    page.goto(f"{admin.app_url}/demo?shop={shop}")  # installs it (token exchange)
    admin.wait_text("#kpi-orders", r"^0$")
    assert page.locator("#ac-empty").is_visible()
    assert "No ambassadors yet" in page.locator("#ac-empty").inner_text()
    assert "No orders credited" in admin.wait_text("#trend-summary", r"No orders")
    assert "No active ambassadors" in page.locator("#tiers-summary").inner_text()
    for key in ("trend", "tiers", "top"):
        assert "Nothing to show yet" in (page.locator(f"#{key}-rows").text_content() or "")
    assert admin.error_banner() == ""
    admin.shot("dashboard")

    admin.open("/app/ambassadors", shop=shop)
    admin.wait_text("#ac-rows", r"No ambassadors match")
    admin.open("/app/applications", shop=shop)
    admin.wait_text("#app-rows", r"No pending applications")
    admin.open("/app/health", shop=shop)
    admin.wait_text("#h-parked", r"Nothing parked")
    admin.shot("health")


def test_api_failures_are_shown_as_messages_not_blank_pages(admin: Admin) -> None:
    admin.allowed_errors.append(re.compile(r"status of (502|503)|ERR_CONNECTION_REFUSED"))
    page = admin.page
    # A proxy in front of the app answers with an HTML error page.
    page.route("**/api/v1/ambassadors?*", lambda route: route.fulfill(
        status=502, content_type="text/html", body="<html><body>Bad gateway</body></html>"))
    admin.open("/app/ambassadors")
    admin.wait_text("#ac-error", r"HTTP 502")
    assert "Could not load the ambassadors" in page.locator("#ac-rows").inner_text()
    assert page.locator("h1").is_visible()
    admin.shot("gateway-error")

    # The app's own JSON error: its message is what the merchant reads.
    page.route("**/api/v1/analytics/**", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body=json.dumps({"error": {"code": "unavailable", "message": "The database is busy"}})))
    admin.open("/app")
    admin.wait_text("#ac-error", r"The database is busy")
    assert "could not be loaded" in page.locator("#trend-summary").inner_text()
    admin.wait_text("#ac-intake", r"healthy")  # the rest of the page still works
    admin.shot("json-error")

    # The app unreachable altogether.
    page.route("**/api/v1/tiers", lambda route: route.abort("connectionrefused"))
    admin.open("/app/tiers")
    admin.wait_text("#ac-error", r"could not be reached")
    admin.shot("unreachable")


def test_a_session_token_expiring_mid_session_is_renewed_silently(admin: Admin) -> None:
    admin.allowed_errors.append(re.compile(r"status of 401"))
    page = admin.page
    page.clock.install()
    page.goto(admin.url("/app/ambassadors"))
    admin.wait_text("#ac-rows", r"[A-Z0-9]{4,}")

    # Later in the session: the next token handed over has expired (as App Bridge's cached one
    # can); the API refuses it with the retry header and the page asks for a fresh one.
    expired = admin.demo["shopify_emulator"].mint_session_token(SHOP, ttl=-120)
    handed: list[str] = []

    def token(route: Any) -> None:
        if not handed:
            handed.append("expired")
            route.fulfill(status=200, content_type="application/json",
                          body=json.dumps({"token": expired, "shop": SHOP}))
        else:
            handed.append("fresh")
            route.continue_()

    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/api/v1/ambassadors" in r.url
            else None)
    page.route("**/demo/session-token*", token)
    page.clock.fast_forward("01:00")  # past the page's 30-second reuse of a token
    page.fill("#f-q", "example.com")
    page.locator("#ac-filters button[type=submit]").click()
    page.wait_for_function("() => !document.querySelector('#ac-rows').textContent"
                           ".includes('Loading')")
    admin.wait_text("#ac-rows", r"[A-Z0-9]{4,}")
    assert handed[:2] == ["expired", "fresh"], handed
    assert 401 in statuses and statuses[-1] == 200, statuses
    assert admin.error_banner() == ""
    admin.shot("renewed")
