"""The merchant's main journeys, clicked through in headless Chromium on the demo system: enrol
top customers and see their codes, a friend orders with a code at the emulator's checkout and
the dashboard moves, review an application, connect Salesforce (the emulated org)."""

from __future__ import annotations

import re
import time

from tests.browser.conftest import SHOP, TIMEOUT_MS, Admin


def test_enrol_top_customers_and_see_their_codes(admin: Admin) -> None:
    page = admin.open("/app/candidates")
    admin.wait_text("#cand-rows", r"@example\.com")  # the scan ran, with live progress
    boxes = page.locator("#cand-rows input[data-customer]")
    assert boxes.count() >= 2
    names = [page.locator("#cand-rows tr").nth(i).locator("td").nth(1).inner_text()
             for i in range(2)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    assert page.locator("#cand-selected").inner_text() == "2 selected"
    admin.shot("selected")
    page.locator("#enrol-button").click()
    admin.wait_text("#ac-status", r"Enrolment finished: 2 of 2")
    assert "Enrolled 2" in page.locator("#enrol-report").inner_text()
    admin.shot("enrolled")

    page.locator("#enrol-report a").first.click()
    code = admin.wait_text("#a-code", r"^[A-Z0-9_-]{3,}$")
    assert page.locator("#a-name").inner_text() in names
    assert admin.error_banner() == ""
    admin.shot("ambassador-with-code")

    admin.open("/app/ambassadors", status="active")
    admin.wait_text("#ac-rows", re.escape(code))
    admin.shot("codes-in-the-list")


def test_an_order_with_a_code_moves_the_dashboard(admin: Admin) -> None:
    page = admin.open("/app")
    before = int(admin.wait_text("#kpi-orders", r"^\d+$"))
    admin.shot("before")
    admin.open("/app/ambassadors", status="active")
    code = admin.wait_text("#ac-rows tr:first-child code", r"^[A-Z0-9_-]+$")

    # A friend follows the ambassador's share link and checks out at the emulator's store.
    shop_page = admin.context.new_page()
    shop_page.goto(f"{admin.demo['emulator_url']}/{SHOP}/discount/{code}?redirect=/")
    assert shop_page.locator("input[name=discount_code]").input_value() == code
    shop_page.fill("input[name=email]", "browser.friend@example.com")
    shop_page.fill("input[name=first_name]", "Browser")
    shop_page.locator("button", has_text="Place order").click()
    shop_page.wait_for_selector("text=Thank you!")
    admin.shot("checkout", page=shop_page)
    shop_page.close()

    # The dashboard moves once the signed webhooks are applied (jobs run in the background).
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    after = before
    while after <= before and time.monotonic() < deadline:
        page = admin.open("/app")
        after = int(admin.wait_text("#kpi-orders", r"^\d+$"))
    assert after == before + 1
    assert f"{after} orders" in page.locator("#trend-summary").inner_text()
    admin.shot("after")


def test_review_an_application_and_approve_it(admin: Admin) -> None:
    page = admin.open("/app/applications")
    admin.wait_text("#app-rows", r"pending")
    link = page.locator("#app-rows a").first
    name = link.inner_text()
    link.click()
    admin.wait_text("#p-name", re.escape(name))
    admin.wait_text("#p-status", r"pending")
    admin.shot("pending")
    page.locator("#approve-form button[type=submit]").click()
    admin.wait_text("#ac-status", r"Approved")
    admin.wait_text("#p-status", r"approved")
    assert page.locator("#approve-form button[type=submit]").is_disabled()
    admin.shot("approved")


def test_connect_salesforce_through_the_emulated_org(admin: Admin) -> None:
    page = admin.open("/app/salesforce")
    admin.wait_text("#sf-status", r"^Connected$")
    page.locator("#sf-disconnect").click()
    admin.wait_text("#sf-status", r"^Disconnected$")
    admin.shot("disconnected")

    with admin.context.expect_page() as opened:
        page.locator("#sf-connect").click()
    popup = opened.value  # Salesforce's login in a new tab: the emulated org approves at once
    popup.wait_for_load_state("load")
    assert popup.url.startswith(admin.app_url + "/salesforce/callback")
    admin.shot("callback", page=popup)
    popup.close()
    admin.wait_text("#ac-status", r"Approve access in the Salesforce tab")

    page = admin.open("/app/salesforce")
    admin.wait_text("#sf-status", r"^Connected$")
    assert admin.wait_text("#sf-org", r"https?://")
    admin.shot("connected")


def test_replay_a_parked_webhook_from_system_health(admin: Admin) -> None:
    from tests.functional.test_analytics_api import park

    park(admin.demo["container"], SHOP, "browser-parked")
    page = admin.open("/app/health")
    admin.wait_text("#h-parked", r"products/update")
    assert "RuntimeError: boom" in page.locator("#h-parked").inner_text()
    admin.shot("parked")
    page.locator("#h-parked button", has_text="Try again").click()
    admin.wait_text("#ac-status", r"back in line")
    admin.wait_text("#h-parked", r"Nothing parked")
    admin.shot("replayed")


def test_a_ledger_order_explains_why_it_was_credited(admin: Admin) -> None:
    from tests.browser.test_pages import first_id

    page = admin.open(f"/app/ambassadors/{first_id(admin, 'ambassador')}")
    admin.wait_text("#ledger-rows", r"commission")
    button = page.locator("#ledger-rows button[aria-expanded]").first
    button.click()
    admin.wait_text("#ledger-rows tr.explanation", r"Credited by the rule")
    assert button.get_attribute("aria-expanded") == "true"
    text = page.locator("#ledger-rows tr.explanation").inner_text()
    assert "Revenue credited" in text and "reward" in text
    admin.shot("explained")
    button.click()  # and closed again
    assert page.locator("#ledger-rows tr.explanation").count() == 0


def test_a_salesforce_sync_is_followed_live_until_it_finishes(admin: Admin) -> None:
    page = admin.open("/app/salesforce")
    admin.wait_text("#sf-status", r"^Connected$")
    page.locator("#sf-sync").click()
    admin.wait_text("#ac-status", r"Sync finished \((done|nothing_to_do)\)")
    assert page.locator("#sf-sync").is_enabled()
    assert admin.error_banner() == ""
    admin.shot("synced")


def test_bulk_set_a_tier_on_selected_ambassadors(admin: Admin) -> None:
    page = admin.open("/app/ambassadors", status="active")
    admin.wait_text("#ac-rows", r"[A-Z0-9]{4,}")
    boxes = page.locator("#ac-rows input[data-id]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.select_option("#bulk-tier", label="Macro")
    page.locator("#bulk-tier-apply").click()
    admin.wait_text("#ac-status", r"2 of 2 now in Macro")
    admin.wait_text("#ac-rows tr:nth-child(2)", r"Macro")
    for i in range(2):
        assert page.locator("#ac-rows tr").nth(i).locator("td").nth(4).inner_text() == "Macro"
    assert admin.error_banner() == ""
    admin.shot("tier-set")


def test_the_ambassador_page_shows_their_salesforce_contact(admin: Admin) -> None:
    from tests.browser.test_pages import first_id

    admin.open(f"/app/ambassadors/{first_id(admin, 'ambassador')}")
    admin.wait_text("#crm-state", r"synced")
    assert re.fullmatch(r"003\w{12,15}", admin.wait_text("#crm-contact", r"\w"))
    admin.wait_text("#crm-synced", r"\d")
    admin.shot("salesforce-contact")
