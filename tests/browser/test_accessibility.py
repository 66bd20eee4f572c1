"""Accessibility checks in the browser: every control, button, link and chart of every page has
an accessible name; the dashboard's charts and their data tables are reached with the keyboard;
the charts' colours keep text contrast (4.5:1) on white."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.conftest import Admin
from tests.browser.test_pages import PAGES

ADMIN_JS = Path(__file__).resolve().parents[2] / "admin_ui" / "static" / "admin.js"

PROBLEMS = """() => {
  const visible = (n) => !!(n.offsetWidth || n.offsetHeight || n.getClientRects().length)
    && getComputedStyle(n).visibility !== "hidden";
  const named = (n) => (n.labels && n.labels.length) || n.getAttribute("aria-label")
    || n.getAttribute("aria-labelledby") || n.getAttribute("title");
  const out = [];
  for (const n of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (visible(n) && !named(n)) out.push(`unlabelled ${n.tagName} ${n.id || n.name}`);
  }
  for (const n of document.querySelectorAll("button, a[href]")) {
    if (visible(n) && !(n.textContent.trim() || n.getAttribute("aria-label")))
      out.push(`nameless ${n.tagName} ${n.outerHTML.slice(0, 80)}`);
  }
  for (const n of document.querySelectorAll("canvas")) {
    const label = n.getAttribute("aria-label") || "";
    if (n.getAttribute("role") !== "img" || !label || /loading$/.test(label))
      out.push(`chart without a name: ${n.id}`);
  }
  if (document.documentElement.lang !== "en") out.push("no page language");
  if (document.querySelectorAll("h1").length !== 1) out.push("not exactly one h1");
  return out;
}"""


@pytest.mark.parametrize(("name", "path", "ready", "pattern"), PAGES, ids=[p[0] for p in PAGES])
def test_every_control_and_chart_has_an_accessible_name(
    admin: Admin, name: str, path: object, ready: str, pattern: str
) -> None:
    page = admin.open(path(admin) if callable(path) else path)  # type: ignore[operator]
    admin.wait_text(ready, pattern)
    page.wait_for_load_state("networkidle")
    assert page.evaluate(PROBLEMS) == []


def test_the_check_finds_nameless_controls(admin: Admin) -> None:
    page = admin.open("/app/settings")
    admin.wait_text("#settings-save", r".")
    page.evaluate("document.querySelector('#ac').append(Object.assign("
                  "document.createElement('input'), {id: 'bare'}),"
                  " document.createElement('button'))")
    problems = page.evaluate(PROBLEMS)
    assert any("unlabelled INPUT bare" in p for p in problems), problems
    assert any("nameless BUTTON" in p for p in problems), problems


def test_the_charts_and_their_tables_are_reached_with_the_keyboard(admin: Admin) -> None:
    page = admin.open("/app")
    admin.wait_text("#top-summary", r"Top ambassadors: ")
    reached = []
    for _ in range(120):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(
            "(() => { const n = document.activeElement;"
            " return n.id || (n.tagName === 'SUMMARY' ? n.parentElement.id : n.tagName); })()"))
    for key in ("trend", "tiers", "top"):
        assert f"chart-{key}" in reached and f"{key}-details" in reached, reached
    # Enter on a focused summary opens the figures as a table.
    page.focus("#tiers-details summary")
    page.keyboard.press("Enter")
    assert page.locator("#tiers-details").get_attribute("open") is not None
    assert page.locator("#tiers-rows tr").first.is_visible()


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_chart_colours_keep_text_contrast_on_white() -> None:
    source = ADMIN_JS.read_text()
    match = re.search(r"const CHART_COLOURS = \[([^\]]+)\]", source)
    assert match
    colours = re.findall(r'"(#[0-9a-fA-F]{6})"', match.group(1))
    assert len(colours) >= 5
    for colour in colours:
        ratio = (1.0 + 0.05) / (_luminance(colour) + 0.05)
        assert ratio >= 4.5, (colour, round(ratio, 2))


def _tab_through(page: object, presses: int) -> list[str]:
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")  # type: ignore[attr-defined]
        reached.append(page.evaluate(  # type: ignore[attr-defined]
            "(() => { const n = document.activeElement;"
            " return n.id || (n.tagName === 'SUMMARY' ? n.parentElement.id : n.tagName); })()"))
    return reached


def test_the_roi_and_standings_charts_and_their_tables_are_reached_with_the_keyboard(
    admin: Admin,
) -> None:
    page = admin.open("/app/roi")
    admin.wait_text("#roi-summary", r"attributed revenue against")
    reached = _tab_through(page, 40)
    assert "chart-roi" in reached and "roi-details" in reached, reached

    page = admin.open("/app/engagement")
    admin.wait_text("#bands-summary", r"%")
    page.locator("[data-standings]").first.focus()
    page.keyboard.press("Enter")  # a button: Enter shows the standings
    admin.wait_text("#standings-summary", r"so far|final|nobody")
    reached = _tab_through(page, 6)
    at = reached.index("chart-standings") if "chart-standings" in reached else -1
    assert at >= 0 and reached[at + 1] == "standings-details", reached
    page.focus("#standings-details summary")
    page.keyboard.press("Enter")  # on the summary: the table opens
    assert page.locator("#standings-details").get_attribute("open") is not None


def test_the_delete_confirmation_is_a_modal_that_escape_dismisses(admin: Admin) -> None:
    page = admin.open("/app/resources")
    admin.wait_text("#res-rows", r"Spring flyer")
    button = page.get_by_role("button", name=re.compile(r"^Delete Spring flyer"))
    button.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#res-confirm")
    assert dialog.is_visible()
    assert page.evaluate("document.activeElement.id") == "res-confirm-keep"  # the safe choice
    assert page.evaluate("document.querySelector('#res-confirm').matches(':modal')")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert "Spring flyer" in page.locator("#res-rows").inner_text()
