"""The resources library, return on influence and a challenge's standings in headless Chromium
on the demo store: upload a flyer and see it listed, a bad file refused next to the form with
nothing stored, delete after a confirmation; the ROI chart with its table, tiers and challenges;
the standings of the demo's running and closed challenges as a chart with its table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.browser.conftest import SHOP, Admin

PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def _library(admin: Admin) -> tuple[list[str], list[Path]]:
    """The shop's resources (titles) and the files in storage, straight from the system."""
    c = admin.demo["container"]
    with c.uow() as uow:
        shop = uow.shops.get(SHOP)
        titles = [r.title for r in uow.content.resources(shop.id)]
    root = c.settings.storage_dir
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return titles, files


def _row(page: Any, title: str) -> Any:
    return page.locator("#res-rows tr", has=page.get_by_text(title, exact=True))


def test_upload_a_flyer_see_it_listed_and_delete_it_after_confirming(admin: Admin) -> None:
    page = admin.open("/app/resources")
    admin.wait_text("#res-rows", r"Spring flyer")  # the demo's seeded library
    assert "Pre-written post" in page.locator("#res-rows").inner_text()
    before, files_before = _library(admin)

    title = "Summer flyer <b>bold</b>"
    page.select_option("#res-kind", "flyer")
    page.fill("#res-title", title)
    page.set_input_files("#res-file", files=[
        {"name": "summer.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.locator("#res-submit").click()
    admin.wait_text("#ac-status", r"^Added: Summer flyer")
    row = _row(page, title)
    row.wait_for()
    assert page.locator("#res-rows b").count() == 0  # the markup is shown as text
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "Flyer" and cells[2] == "summer.pdf" and cells[3] == f"{len(PDF)} B"
    titles, files = _library(admin)
    assert titles.count(title) == 1 and len(files) == len(files_before) + 1
    admin.shot("uploaded")

    # Delete asks first; "Keep it" keeps it.
    row.get_by_role("button", name=f"Delete {title}").click()
    dialog = page.locator("#res-confirm")
    assert dialog.is_visible() and title in dialog.inner_text()
    admin.shot("confirm-delete")
    page.locator("#res-confirm-keep").click()
    assert not dialog.is_visible()
    assert _row(page, title).count() == 1 and title in _library(admin)[0]

    row.get_by_role("button", name=f"Delete {title}").click()
    page.locator("#res-confirm-delete").click()
    admin.wait_text("#ac-status", r"^Deleted: Summer flyer")
    assert _row(page, title).count() == 0
    assert _library(admin) == (before, files_before)
    assert admin.error_banner() == ""


def test_a_bad_file_is_refused_next_to_the_form_and_nothing_is_stored(admin: Admin) -> None:
    admin.allowed_errors.append(re.compile(r"status of 422"))  # the refusals under test
    page = admin.open("/app/resources")
    admin.wait_text("#res-rows", r"Spring flyer")
    before = _library(admin)
    page.fill("#res-title", "Not a flyer")

    # A type the library does not take (the API refuses it).
    page.set_input_files("#res-file", files=[
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just text"}])
    page.locator("#res-submit").click()
    message = admin.wait_text("#res-file-error", r"PDF, PNG, JPEG, GIF or WebP files only")
    assert page.locator("#res-file").get_attribute("aria-invalid") == "true"
    assert "Nothing was added" in admin.error_banner()
    admin.shot("wrong-type")

    # A PNG by name and type whose bytes are something else.
    page.set_input_files("#res-file", files=[
        {"name": "logo.png", "mimeType": "image/png", "buffer": b"<svg onload=alert(1)>"}])
    page.locator("#res-submit").click()
    admin.wait_text("#res-file-error", r"not a image/png file")

    # Too large: said before anything is sent.
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (10 * 1024 * 1024)
    page.set_input_files("#res-file", files=[
        {"name": "huge.png", "mimeType": "image/png", "buffer": big}])
    page.locator("#res-submit").click()
    admin.wait_text("#res-file-error", r"limited to 10\.0 MiB")
    admin.shot("too-large")

    # A post without its text: the message goes next to the text.
    page.select_option("#res-kind", "post")
    assert page.locator("#res-file").is_hidden() and page.locator("#res-body").is_visible()
    page.locator("#res-submit").click()
    admin.wait_text("#res-body-error", r"body: 1 to 5000 characters")
    assert message and _library(admin) == before


def test_return_on_influence_chart_with_its_table_tiers_and_challenges(admin: Admin) -> None:
    page = admin.open("/app/roi")
    summary = admin.wait_text("#roi-summary", r"attributed revenue against .* program cost")
    canvas = page.locator("#chart-roi")
    assert canvas.is_visible() and canvas.get_attribute("aria-label") == summary
    assert page.evaluate("!!window.Chart && !!Chart.getChart('chart-roi')")
    page.locator("#roi-details summary").focus()
    page.keyboard.press("Enter")
    rows = page.locator("#roi-rows tr")
    assert rows.count() == 12  # the last 12 months, empty ones too
    this_month = rows.last.locator("td").all_inner_texts()
    assert re.fullmatch(r"\d+\.\d\d USD", this_month[1]) and this_month[1] != "0.00 USD"
    assert int(this_month[2]) > 0
    assert re.search(r"\d+\.\d\d USD", page.locator("#roi-revenue").inner_text())
    assert "×" in page.locator("#roi-ratio").inner_text()
    assert re.search(r"Micro|Macro|Top", page.locator("#roi-tier-rows").inner_text())
    challenges = page.locator("#roi-challenge-rows").inner_text()
    assert "Referral race" in challenges and "Content sprint" in challenges
    assert "60.00 USD" in challenges  # the closed sprint's prizes: 40 + 20
    admin.shot("roi")

    # A range the API refuses: the message next to the field, the page stays.
    admin.allowed_errors.append(re.compile(r"status of 422"))
    page.fill("#roi-from", "2026-11")
    page.fill("#roi-to", "2026-01")
    page.locator("#roi-form button[type=submit]").click()
    admin.wait_text("#roi-from-error", r"from must not be after to")
    assert rows.count() == 12


def test_a_challenges_standings_as_a_chart_with_its_table(admin: Admin) -> None:
    page = admin.open("/app/engagement")
    admin.wait_text("#bands-summary", r"%")
    race = page.locator("#challenges-heading + .table-wrap tbody tr", has_text="Referral race")
    race.locator("[data-standings]").click()
    summary = admin.wait_text("#standings-summary", r"Referral race, .*, so far: 1\. ")
    canvas = page.locator("#chart-standings")
    assert canvas.is_visible() and canvas.get_attribute("aria-label") == summary
    assert page.evaluate("!!Chart.getChart('chart-standings')")
    bars = page.evaluate("Chart.getChart('chart-standings').data.datasets[0].data")
    assert bars == sorted(bars, reverse=True) and bars[0] > 0
    page.locator("#standings-details summary").click()
    first = page.locator("#standings-rows tr").first.locator("td").all_inner_texts()
    assert first[0] == "1" and re.fullmatch(r"\d+\.\d\d USD", first[2])
    admin.shot("standings-running")

    sprint = page.locator("#challenges-heading + .table-wrap tbody tr", has_text="Content sprint")
    sprint.locator("[data-standings]").click()
    admin.wait_text("#standings-heading", r"Content sprint.*\(final\)")
    admin.wait_text("#standings-summary", r"final: 1\. [^,]+ 3, 2\. [^,]+ 2, 3\. [^,]+ 1 ")
    assert page.locator("#standings-rows tr").first.locator("td").last.inner_text() == "40.00 USD"
    assert admin.error_banner() == ""
    admin.shot("standings-final")
