"""Every admin page, opened in headless Chromium on the demo store with the Shopify CDN
unreachable: it renders, fills itself from the API, shows no error and logs no console error
(the ``admin`` fixture checks the console after each test)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import Admin


def first_id(admin: Admin, kind: str) -> int:
    c = admin.demo["container"]
    with c.engine.connect() as conn:
        if kind == "ambassador":  # the one with the most revenue: a populated page
            sql = ("SELECT a.id FROM ambassadors a"
                   " JOIN ambassador_stats s ON s.ambassador_id = a.id"
                   " ORDER BY s.attributed_revenue DESC, a.id LIMIT 1")
        else:
            sql = "SELECT id FROM applications ORDER BY id LIMIT 1"
        return int(conn.exec_driver_sql(sql).scalar_one())


# (page, path, what shows the page is filled: selector and a regex its text must match)
PAGES: list[tuple[str, Any, str, str]] = [
    ("dashboard", "/app", "#trend-summary", r"orders and .* credited"),
    ("ambassadors", "/app/ambassadors", "#ac-rows", r"[A-Z0-9]{4,}"),
    ("ambassador", lambda a: f"/app/ambassadors/{first_id(a, 'ambassador')}", "#ledger-rows",
     r"commission"),
    ("candidates", "/app/candidates", "#cand-rows", r"@example\.com"),
    ("applications", "/app/applications", "#app-rows", r"Priya|Jonas|Amara"),
    ("application", lambda a: f"/app/applications/{first_id(a, 'application')}", "#p-answers",
     r"Why do you love"),
    ("tiers", "/app/tiers", "#tier-rows", r"Macro"),
    ("settings", "/app/settings", "#settings-save", r"."),
    ("salesforce", "/app/salesforce", "#sf-status", r"^Connected$"),
    ("health", "/app/health", "#h-updated", r"^Updated"),
    ("engagement", "/app/engagement", "#bands-summary", r"% engaged"),
    ("resources", "/app/resources", "#res-rows", r"Spring flyer"),
    ("roi", "/app/roi", "#roi-summary", r"attributed revenue against"),
]


@pytest.mark.parametrize(("name", "path", "ready", "pattern"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_renders_populated_from_the_demo_store(
    admin: Admin, name: str, path: Any, ready: str, pattern: str
) -> None:
    page = admin.open(path(admin) if callable(path) else path)
    admin.wait_text(ready, pattern)
    page.wait_for_load_state("networkidle")
    assert admin.error_banner() == ""
    assert page.locator("h1").inner_text().strip()
    # In the demo's ordinary tab App Bridge is not even asked for (at top level it would send
    # the browser to the Shopify admin's login); framed, it is (see the test below).
    assert not any("cdn.shopify.com" in url for url in admin.blocked), admin.blocked
    assert page.evaluate("typeof window.shopify") == "undefined"
    admin.shot(name)


def test_dashboard_charts_are_drawn_and_have_data_tables(admin: Admin) -> None:
    page = admin.open("/app")
    admin.wait_text("#trend-summary", r"orders and .* credited")
    admin.wait_text("#tiers-summary", r"Active ambassadors by tier: .*\d")
    admin.wait_text("#top-summary", r"Top ambassadors: ")
    for key in ("trend", "tiers", "top"):
        canvas = page.locator(f"#chart-{key}")
        assert canvas.is_visible()
        # Chart.js attached a chart to the canvas and drew on it.
        assert page.evaluate(f"!!window.Chart && !!Chart.getChart('chart-{key}')")
        label = canvas.get_attribute("aria-label") or ""
        assert label == page.locator(f"#{key}-summary").inner_text()
        # The same figures as a table, reachable from the keyboard.
        page.locator(f"#{key}-details summary").focus()
        page.keyboard.press("Enter")
        assert page.locator(f"#{key}-rows tr").count() >= 1
        assert "Nothing to show" not in page.locator(f"#{key}-rows").inner_text()
    assert int(page.locator("#kpi-orders").inner_text()) > 0
    admin.shot("charts-with-tables")


def test_framed_like_in_the_shopify_admin_it_works_when_app_bridge_cannot_load(
    admin: Admin,
) -> None:
    """The admin frames the app from another origin; App Bridge is requested from Shopify's
    CDN, which is unreachable here: the pages still fill (the demo's stand-in gives tokens)."""
    port = admin.app_url.rsplit(":", 1)[1]
    frame_url = f"http://localhost:{port}/__admin_frame__"
    inner = admin.url("/app/ambassadors")
    admin.page.route(frame_url, lambda route: route.fulfill(
        status=200, content_type="text/html",
        body=f'<!doctype html><title>Shopify admin</title><iframe id="app" src="{inner}"'
             ' style="width:1200px;height:850px;border:0"></iframe>'))


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

    admin.page.route(re.compile(r"^http://127\.0\.0\.1:\d+/app[/?]"), frameable)
    admin.page.goto(frame_url)
    frame = admin.page.frame_locator("#app")
    frame.locator("#ac-rows code").first.wait_for()
    assert any("cdn.shopify.com/shopifycloud/app-bridge.js" in u for u in admin.blocked)
    app = next(f for f in admin.page.frames if "/app/ambassadors" in f.url)
    assert app.evaluate("window.top !== window.self && typeof window.shopify") == "undefined"
    assert (app.text_content("#ac-error") or "").strip() == ""
    admin.shot("framed")
