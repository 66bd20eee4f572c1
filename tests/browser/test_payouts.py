"""The payouts journey in headless Chromium on the demo system: the merchant sees what is owed
and what was delivered, approves the cash batch, downloads the PayPal Payouts file, marks it
paid; the ambassador page shows the rewards and the payouts."""

from __future__ import annotations

import csv
import io
import re

from tests.browser.conftest import Admin


def test_approve_export_and_pay_the_cash_batch(admin: Admin) -> None:
    page = admin.open("/app/payouts")
    admin.wait_text("#po-delivered", r"Store credit")  # the demo's run delivered store credit
    assert "Gift card" in page.locator("#po-delivered").inner_text()
    admin.wait_text("#po-batch-rows", r"Cash: 1 ")
    assert page.locator("#po-failed-rows").inner_text().strip() == "No failed payouts."
    admin.shot("payouts")

    page.locator("#po-batch-rows button", has_text="Approve").click()
    admin.wait_text("#ac-status", r"approved")
    with page.expect_download() as download:
        page.locator("#po-batch-rows button", has_text="PayPal file").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(rows) == 1 and rows[0][2] == "USD" and rows[0][5] == "PAYPAL"
    assert re.fullmatch(r"\d+\.\d\d", rows[0][1]) and rows[0][3].startswith("payout-")
    page.locator("#po-batch-rows button", has_text="Mark paid").click()
    admin.wait_text("#ac-status", r"1 cash payout\(s\) marked paid")
    admin.wait_text("#po-delivered", r"Cash")
    admin.shot("cash-paid")
    assert admin.error_banner() == ""

    # The ambassador behind the first delivered payout: rewards and payouts on their page.
    link = page.locator("#po-rows a").first
    link.click()
    admin.wait_text("#r-payouts", r"fulfilled")
    assert page.locator("#r-form").inner_text() != "—"
    admin.shot("ambassador-rewards")
