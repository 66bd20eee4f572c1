"""The ambassadors list and system health in headless Chromium on the demo store: sort by a
column (with the keyboard too) and page on, filter by engagement band, invite the selected
ambassadors to their portal, the Shopify API budget meter, a failed background job retried."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.browser.conftest import SHOP, Admin


def rows(page: Any) -> list[list[str]]:
    return [
        [cell.strip() for cell in r.locator("td").all_inner_texts()]
        for r in page.locator("#ac-rows tr").all()
    ]


def names_in_order(admin: Admin, descending: bool) -> list[str]:
    """Every ambassador's name as the list orders it: first name, last name, then id."""
    with admin.demo["container"].engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT a.first_name, a.last_name, a.id FROM ambassadors a"
            " JOIN shops s ON s.id = a.shop_id WHERE s.domain = %(d)s",
            {"d": SHOP},
        ).all()
    ordered = sorted(found, key=lambda r: (r[0], r[1], r[2]), reverse=descending)
    return [f"{r[0]} {r[1]}".strip() for r in ordered]


def test_sort_by_name_with_the_keyboard_and_page_on(admin: Admin) -> None:
    page = admin.open("/app/ambassadors", limit=3)
    admin.wait_text("#ac-rows", r"[A-Z0-9]{4,}")
    header = page.locator("th[data-sort=name]")
    assert header.get_attribute("aria-sort") == "none"
    assert page.locator("th[data-sort=created]").get_attribute("aria-sort") == "descending"
    header.locator("button").focus()
    page.keyboard.press("Enter")  # a button: reached and pressed with the keyboard
    page.wait_for_function(
        "document.querySelector('th[data-sort=name]').getAttribute('aria-sort') === 'ascending'"
    )
    expected = names_in_order(admin, descending=False)
    admin.wait_text("#ac-rows tr:first-child td:nth-child(2)", f"^{expected[0]}$")
    seen = [r[1] for r in rows(page)]
    admin.shot("sorted-by-name")
    pages = 1
    while page.locator("#ac-next").is_enabled():
        before = page.locator("#ac-rows").inner_text()
        page.locator("#ac-next").click()
        page.wait_for_function(
            "([t]) => { const b = document.querySelector('#ac-rows');"
            " return b.innerText !== t && !/Loading/.test(b.innerText); }",
            arg=[before],
        )
        seen += [r[1] for r in rows(page)]
        pages += 1
    assert pages >= 2 and seen == expected  # no row twice, none missed, in order
    admin.shot("sorted-last-page")
    assert "sort=name" in page.url  # kept in the address for a reload

    header.locator("button").click()  # again: the other way
    page.wait_for_function(
        "document.querySelector('th[data-sort=name]').getAttribute('aria-sort') === 'descending'"
    )
    admin.wait_text(
        "#ac-rows tr:first-child td:nth-child(2)",
        f"^{names_in_order(admin, descending=True)[0]}$",
    )
    assert admin.error_banner() == ""


def test_filter_by_engagement_band(admin: Admin) -> None:
    with admin.demo["container"].engine.connect() as conn:
        counts = dict(
            conn.exec_driver_sql(
                "SELECT coalesce(e.band, 'not engaged'), count(*) FROM ambassadors a"
                " JOIN shops s ON s.id = a.shop_id"
                " LEFT JOIN engagement_scores e ON e.ambassador_id = a.id"
                " WHERE s.domain = %(d)s GROUP BY 1",
                {"d": SHOP},
            ).all()
        )
    band = max(counts, key=lambda b: counts[b])
    page = admin.open("/app/ambassadors")
    admin.wait_text("#ac-rows", r"[A-Z0-9]{4,}")
    page.select_option("#f-band", band)
    page.locator("#ac-filters button[type=submit]").click()
    page.wait_for_function(
        "([b, n]) => { const r = [...document.querySelectorAll('#ac-rows tr')];"
        " return r.length === n && r.every((t) => t.textContent.includes(`(${b})`)); }",
        arg=[band, counts[band]],
    )
    assert f"band={band.replace(' ', '+')}" in page.url
    admin.shot("band-filter")
    assert admin.error_banner() == ""


def test_invite_the_selected_ambassadors_to_their_portal(admin: Admin) -> None:
    c = admin.demo["container"]
    page = admin.open("/app/ambassadors", status="active", limit=2)
    admin.wait_text("#ac-rows", r"[A-Z0-9]{4,}")
    page.locator("#ac-select-all").check()
    page.locator("#bulk-invite").click()
    admin.wait_text("#ac-invite-results", r"Invitations: 2 of 2 sent")
    items = page.locator("#ac-invite-results li")
    assert items.count() == 2
    assert all(o == "invited" for o in items.evaluate_all("l => l.map(i => i.dataset.outcome)"))
    admin.wait_text("#ac-status", r"2 of 2 invited")
    with c.engine.connect() as conn:
        sent = conn.exec_driver_sql(
            "SELECT count(*) FROM notifications WHERE key LIKE 'invite:%%'"
        ).scalar_one()
    assert sent >= 2
    admin.shot("invited")
    assert admin.error_banner() == ""


def test_the_shopify_budget_meter_is_shown(admin: Admin) -> None:
    page = admin.open("/app/health")
    admin.wait_text("#h-shopify-budget", r"points in use")
    meter = page.locator("#h-shopify-meter")
    assert meter.is_visible()
    assert float(meter.get_attribute("max") or 0) > 0
    assert float(meter.evaluate("m => m.value")) >= 0
    assert "read" in page.locator("#h-shopify-budget").inner_text()
    admin.shot("shopify-budget")


@pytest.fixture
def rq_jobs(admin: Admin) -> Any:
    """The demo's app on RQ (its own Redis database) for the length of one test."""
    from redis import Redis

    from adapters.queue.rq_queue import RqJobQueue

    c = admin.demo["container"]
    redis = Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    redis.flushdb()
    saved = c.jobs, c.redis
    c.jobs, c.redis = RqJobQueue(redis), redis
    yield redis
    c.jobs, c.redis = saved
    redis.flushdb()
    redis.close()


def test_a_failed_job_is_retried_from_system_health(
    admin: Admin, rq_jobs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rq import Queue, SimpleWorker

    import entrypoints.jobs

    def broken(shop_domain: str) -> None:
        raise RuntimeError("Shopify answered 502 three times")

    monkeypatch.setattr(entrypoints.jobs, "sync_codes", broken)
    job = Queue("default", connection=rq_jobs).enqueue("entrypoints.jobs.sync_codes", SHOP)
    SimpleWorker(["default"], connection=rq_jobs).work(burst=True)

    page = admin.open("/app/health")
    admin.wait_text("#h-failed-jobs", r"sync_codes")
    assert (
        "RuntimeError: Shopify answered 502 three times"
        in page.locator("#h-failed-jobs").inner_text()
    )
    admin.shot("failed-job")
    page.locator("#h-failed-jobs button", has_text="Retry").click()
    admin.wait_text("#ac-status", r"queued again")
    admin.wait_text("#h-failed-jobs", r"No failed jobs")
    assert Queue("default", connection=rq_jobs).get_job_ids() == [job.id]
    admin.shot("failed-job-retried")
