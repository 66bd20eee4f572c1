"""The engagement page in headless Chromium on the demo system: the bands chart (or its table),
a monthly challenge created from the page, its standings."""

from __future__ import annotations

import re

from tests.browser.conftest import Admin


def test_create_a_monthly_challenge_and_see_its_standings(admin: Admin) -> None:
    page = admin.open("/app/engagement")
    admin.wait_text("#bands-summary", r"(%|No daily snapshot yet)")
    assert page.locator("#chart-bands").get_attribute("aria-label") != ""
    page.select_option("#ch-metric", "orders")
    page.fill("#ch-prize", "25.00")
    page.locator("#challenge-form button[type=submit]").click()
    admin.wait_text("#challenges-heading + .table-wrap tbody", r"\d{4} challenge")
    row = page.locator("#challenges-heading + .table-wrap tbody tr").first
    assert "orders" in row.inner_text()
    row.locator("[data-standings]").click()
    admin.wait_text("#standings-rows", r"Nobody has joined yet")
    assert admin.error_banner() == ""
    admin.shot("challenge-created")


def test_a_bad_prize_is_shown_next_to_its_field(admin: Admin) -> None:
    admin.allowed_errors.append(re.compile(r"status of 422"))  # the refusal under test
    page = admin.open("/app/engagement")
    page.fill("#ch-prize", "-5")
    page.locator("#challenge-form button[type=submit]").click()
    admin.wait_text("[data-error-for='prizes[0].amount']", r"above 0")
    admin.shot("bad-prize")
