"""Finding candidates in a large store through a Shopify bulk operation, end to end: the API,
the job, the adapter's GraphQL and download, against the emulator over HTTP. Also the friend
discount's terms changed in place."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from shopify_app import ShopifyApp

from adapters.shopify.discounts import CUSTOMER_FIELDS, ShopifyDiscounts, _customer
from adapters.shopify.graphql import ShopifyGraphQLClient
from connector.domain.candidates import rank
from connector.ports import BulkOperationBusy, PlatformRetryable
from connector.services import codes, program
from tests.conftest import SHOP

STORE_SIZE = 5_000


@pytest.fixture
def installed(live: Any) -> Any:
    live.install()
    return live


def seed_store(live: Any, size: int = STORE_SIZE) -> None:
    """``size`` customers, most of whom ordered; 40 with a real recent order (recency)."""
    emu = live.emulator
    for i in range(size):
        emu.add_customer(
            SHOP,
            email=f"c{i}@example.com" if i % 97 else None,
            first_name=f"C{i}",
            orders_count=0 if i % 10 == 0 else 1 + (i * 7) % 13,
            amount_spent=f"{(i * 7919) % 3000}.{i % 100:02d}" if i % 10 else "0.00",
        )
    for i in range(1, 41):
        emu.checkout(
            SHOP,
            customer_email=f"c{i * 101}@example.com",
            line_items=[{"title": "Tee", "price": "35.00", "quantity": 1}],
        )


def exact_top(live: Any, limit: int, exclude: frozenset[int] = frozenset()) -> list[int]:
    """The ranking computed from the emulator's own state, exactly."""
    shop = live.emulator.shop(SHOP)
    people = []
    for c in shop.customers.values():
        if c.orders_count <= 0:
            continue
        last = shop.orders.get(c.last_order_id) if c.last_order_id else None
        people.append(
            _customer(
                {
                    "legacyResourceId": str(c.id),
                    "defaultEmailAddress": {"emailAddress": c.email} if c.email else None,
                    "numberOfOrders": str(c.orders_count),
                    "amountSpent": {"amount": str(c.amount_spent), "currencyCode": "USD"},
                    "lastOrder": {"createdAt": last.created_at.isoformat()} if last else None,
                }
            )
        )
    return [c.id for _, c in rank(people, live.container.clock.now()) if c.id not in exclude][
        :limit
    ]


def root_fields(live: Any) -> list[str]:
    return [f for call in live.emulator.graphql_calls for f in call["root_fields"]]


def test_a_large_store_is_ranked_through_a_bulk_operation(installed: Any) -> None:
    seed_store(installed)
    best = exact_top(installed, 1)[0]  # enrolled first: the scan must leave them out
    enrolled = installed.api(
        "POST", "/ambassadors", json={"customer_id": f"gid://shopify/Customer/{best}"}
    )
    assert enrolled.status_code == 201, enrolled.text
    refused = installed.api("GET", "/candidates", params={"limit": 50})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "scan_required"

    calls_before = len(installed.emulator.graphql_calls)
    started = installed.api("POST", "/candidates/scans", json={"limit": 50})
    assert started.status_code == 202, started.text
    scan = installed.api("GET", f"/candidates/scans/{started.json()['scan_id']}").json()
    assert scan["status"] == "done", scan
    assert scan["method"] == "bulk" and scan["customers"] == STORE_SIZE
    with_orders = sum(
        1 for c in installed.emulator.shop(SHOP).customers.values() if c.orders_count > 0
    )
    assert scan["scanned"] == with_orders  # progress reached every customer who ordered
    ids = [int(x["customer_id"].rsplit("/", 1)[1]) for x in scan["items"]]
    assert ids == exact_top(installed, 50, exclude=frozenset({best}))
    assert best not in ids
    first = scan["items"][0]
    assert set(first) == {
        "customer_id",
        "email",
        "first_name",
        "last_name",
        "orders",
        "amount_spent",
        "currency",
        "last_order_at",
        "score",
    }
    assert Decimal(first["amount_spent"]) > 0 and first["email"]
    used = root_fields(installed)[calls_before:]
    assert "bulkOperationRunQuery" in used and "customers" not in used  # no paging


def test_a_small_store_is_ranked_page_by_page(installed: Any) -> None:
    seed_store(installed, size=120)
    started = installed.api("POST", "/candidates/scans", json={"limit": 10})
    scan = installed.api("GET", f"/candidates/scans/{started.json()['scan_id']}").json()
    assert scan["status"] == "done" and scan["method"] == "pages"
    assert [int(x["customer_id"].rsplit("/", 1)[1]) for x in scan["items"]] == exact_top(
        installed, 10
    )
    live_list = installed.api("GET", "/candidates", params={"limit": 10}).json()["items"]
    assert live_list == scan["items"]
    assert "bulkOperationRunQuery" not in root_fields(installed)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/candidates/scans", {"limit": "many"}, 422, "invalid_limit"),
        ("/candidates/scans", [1], 400, "invalid_json"),
        ("/candidates/scans/999999", None, 404, "not_found"),
        ("/tasks/0", None, 404, "not_found"),
    ],
)
def test_bad_scan_requests_are_4xx_with_a_json_error(
    installed: Any, path: str, body: Any, status: int, code: str
) -> None:
    method = "GET" if body is None else "POST"
    response = installed.api(method, path, json=body)
    assert response.status_code == status and response.json()["error"]["code"] == code


def run_scan(live: Any, pacing: program.ScanPacing, total: int = STORE_SIZE) -> tuple[int, Any]:
    """The job, called as the worker calls it, on a task run started for it."""
    c = live.container
    with c.uow() as uow:
        shop = uow.shops.get(SHOP)
        run_id = uow.task_runs.start(shop.id, program.SCAN_KIND, total)
        uow.commit()
    program.scan_candidates(
        c.uow,
        c.discounts,
        c.customer_export,
        c.access_token,
        c.clock,
        SHOP,
        run_id,
        total,
        limit=20,
        pacing=pacing,
    )
    with c.uow() as uow:
        return run_id, uow.task_runs.get(shop.id, run_id)


def test_progress_is_recorded_while_shopify_reads_the_customers(installed: Any) -> None:
    seed_store(installed)
    installed.emulator.bulk.rate = 1_000.0  # about 4.5 s of RUNNING for 4,500 customers
    seen: list[int] = []
    c = installed.container

    def sleep(seconds: float) -> None:
        import time

        time.sleep(seconds)
        with c.uow() as uow:
            shop = uow.shops.get(SHOP)
            run = uow.task_runs.get(shop.id, run_ids[-1])
        seen.append(run.done)

    run_ids = [0]
    with c.uow() as uow:
        run_ids.append(uow.task_runs.start(uow.shops.get(SHOP).id, program.SCAN_KIND, STORE_SIZE))
        uow.commit()
    program.scan_candidates(
        c.uow,
        c.discounts,
        c.customer_export,
        c.access_token,
        c.clock,
        SHOP,
        run_ids[-1],
        STORE_SIZE,
        limit=20,
        pacing=program.ScanPacing(poll=0.3, poll_max=0.3, sleep=sleep),
    )
    with c.uow() as uow:
        final = uow.task_runs.get(uow.shops.get(SHOP).id, run_ids[-1])
    assert final.status == "done" and len(final.report["items"]) == 20
    partial = [n for n in seen if 0 < n < final.done]
    assert len(partial) >= 2 and partial == sorted(partial)  # "scanning… N done", growing


def test_an_export_already_running_is_waited_for_then_reported(installed: Any) -> None:
    seed_store(installed, size=3_000)
    emu, c = installed.emulator, installed.container
    emu.bulk.concurrency = 1  # as before API version 2026-01
    emu.bulk.delay = 60.0  # the other export stays busy for a minute
    other = c.customer_export.start_customer_export(SHOP, c.access_token(SHOP))
    with pytest.raises(BulkOperationBusy):
        c.customer_export.start_customer_export(SHOP, c.access_token(SHOP))

    _, run = run_scan(installed, program.ScanPacing(poll=0.05, busy_wait=0.3))
    assert run.status == "failed"
    assert run.report["error"]["code"] == "bulk_operation_busy"
    assert "already running" in run.report["error"]["message"]
    assert other.id in run.report["error"]["message"]  # Shopify's message names it

    c.customer_export.cancel_bulk_operation(SHOP, c.access_token(SHOP), other.id)
    emu.bulk.delay = 0.1
    _, run = run_scan(installed, program.ScanPacing(poll=0.05, busy_wait=5))
    assert run.status == "done" and len(run.report["items"]) == 20


def test_a_failed_bulk_operation_fails_the_scan_with_shopifys_error_code(installed: Any) -> None:
    seed_store(installed, size=3_000)
    installed.emulator.fail_next_bulk_operation("ACCESS_DENIED", after_objects=100)
    started = installed.api("POST", "/candidates/scans", json={})
    scan = installed.api("GET", f"/candidates/scans/{started.json()['scan_id']}").json()
    assert scan["status"] == "failed" and scan["items"] == []
    assert scan["error"]["code"] == "bulk_operation_failed"
    assert "ACCESS_DENIED" in scan["error"]["message"]
    assert scan["scanned"] == 100  # what Shopify had read before it failed


def test_the_bulk_query_is_valid_in_the_real_schema() -> None:
    from graphql import parse, validate

    from adapters.shopify.discounts import (
        BULK_CANCEL,
        BULK_OPERATION,
        BULK_RUN,
        CUSTOMER_EXPORT_QUERY,
        CUSTOMERS_COUNT,
        UPDATE_DISCOUNT,
    )
    from adapters.shopify.emulator.admin_schema import admin_schema

    for document in (
        BULK_RUN,
        BULK_OPERATION,
        BULK_CANCEL,
        CUSTOMERS_COUNT,
        UPDATE_DISCOUNT,
        CUSTOMER_EXPORT_QUERY,
    ):
        assert validate(admin_schema(), parse(document)) == []
    assert "legacyResourceId" in CUSTOMER_FIELDS


# --- the friend's discount terms, changed in place -------------------------------------------


def discount_state(live: Any) -> list[Any]:
    return list(live.emulator.shop(SHOP).discounts.values())


def impatient(c: Any) -> ShopifyDiscounts:
    """The same adapter over the same HTTP path, without the client's back-off sleeps."""
    app = ShopifyApp(c.settings.shopify_api_key, c.settings.shopify_api_secret)
    client = ShopifyGraphQLClient(
        app, c.shopify_http, c.settings.shopify_api_version, sleep=lambda _: None
    )
    return ShopifyDiscounts(client)


def update_calls(live: Any) -> int:
    return root_fields(live).count("discountCodeBasicUpdate")


def test_changing_the_terms_updates_the_shared_discount_in_place(installed: Any) -> None:
    for name in ("Ava", "Leo"):
        body = {"email": f"{name.lower()}@example.com", "first_name": name, "last_name": "Stone"}
        assert installed.api("POST", "/ambassadors", json=body).status_code == 201
    (discount,) = discount_state(installed)
    assert discount.value_type == "percentage" and len(discount.code_ids) == 2

    changed = installed.api(
        "PATCH",
        "/program/settings",
        json={
            "friend_discount": {
                "kind": "fixed_amount",
                "value": "5",
                "minimum_subtotal": "30",
                "once_per_customer": False,
                "combines_with_order": True,
            }
        },
    )
    assert changed.status_code == 200, changed.text
    (same,) = discount_state(installed)  # no second discount
    assert same.id == discount.id and len(same.code_ids) == 2
    assert same.value_type == "fixed_amount" and same.amount == Decimal("5.00")
    assert same.minimum_subtotal == Decimal("30.00") and same.title == "Ambassador friends 5 off"
    assert same.applies_once_per_customer is False
    assert same.combines_with["orderDiscounts"] is True
    order = installed.emulator.checkout(
        SHOP,
        customer_email="friend@example.com",
        discount_codes=["avas"],
        line_items=[{"title": "Tee", "price": "40.00", "quantity": 1}],
    )
    assert order["total_discounts"] == "5.00"

    # Re-running changes nothing and calls nothing; new codes join the same discount.
    before = update_calls(installed)
    c = installed.container
    codes.sync_codes(c.uow, c.discounts, c.access_token, c.clock, SHOP)
    assert update_calls(installed) == before
    new = {"email": "mia@example.com", "first_name": "Mia", "last_name": "Rossi"}
    assert installed.api("POST", "/ambassadors", json=new).status_code == 201
    (still,) = discount_state(installed)
    assert len(still.code_ids) == 3


def test_a_failed_terms_update_is_retried_whole_and_never_makes_a_second_discount(
    installed: Any,
) -> None:
    body = {"email": "ava@example.com", "first_name": "Ava", "last_name": "Stone"}
    assert installed.api("POST", "/ambassadors", json=body).status_code == 201
    c = installed.container
    with c.uow() as uow:
        shop = uow.shops.get(SHOP)
    program.update_settings(c.uow(), shop, {"friend_discount": {"value": "15"}})  # no job
    installed.emulator.set_fault("5xx", count=5)  # the update keeps failing
    with pytest.raises(PlatformRetryable):
        codes.sync_codes(c.uow, impatient(c), c.access_token, c.clock, SHOP)
    (discount,) = discount_state(installed)
    assert discount.percentage == pytest.approx(0.10)  # Shopify unchanged
    with c.uow() as uow:  # and the discount still filed under the old terms: retry pending
        assert set(uow.program.shared_discounts(shop.id).values()) != {
            uow.program.settings(shop.id).friend_discount.key()
        }
    installed.emulator.clear_faults()

    report = codes.sync_codes(c.uow, c.discounts, c.access_token, c.clock, SHOP)
    assert report.terms_updated == [f"gid://shopify/DiscountCodeNode/{discount.id}"]
    (discount,) = discount_state(installed)
    assert discount.percentage == pytest.approx(0.15) and discount.title.endswith("15%")
    again = codes.sync_codes(c.uow, c.discounts, c.access_token, c.clock, SHOP)
    assert again.terms_updated == []


def test_the_cli_enrols_the_top_customers_of_a_large_store_through_a_bulk_scan(
    installed: Any,
) -> None:
    from click.testing import CliRunner

    from entrypoints import jobs
    from entrypoints.cli import main
    from tests.conftest import API_KEY, API_SECRET

    seed_store(installed, size=3_000)
    settings = installed.container.settings
    env = {
        "APP_ENV": "test", "DATABASE_URL": settings.database_url,
        "SHOPIFY_API_KEY": API_KEY, "SHOPIFY_API_SECRET": API_SECRET,
        "SHOPIFY_API_BASE_URL": str(installed.emulator.base_url), "APP_URL": installed.url,
        "ENCRYPTION_KEY": settings.encryption_key, "SECRET_KEY": settings.secret_key,
        "INSTANCE_PATH": str(settings.instance_path), "REDIS_URL": "",
    }  # fmt: skip
    installed.emulator.fail_next_bulk_operation("INTERNAL_SERVER_ERROR")
    try:
        failed = CliRunner().invoke(main, ["enrol-top", "--shop", SHOP, "--limit", "5"], env=env)
        done = CliRunner().invoke(main, ["enrol-top", "--shop", SHOP, "--limit", "5"], env=env)
    finally:
        jobs.configure(installed.container)
    assert failed.exit_code == 1 and "INTERNAL_SERVER_ERROR" in failed.output
    assert done.exit_code == 0, done.output
    assert "enrolled 5 of 5 candidates" in done.output
    with installed.container.uow() as uow:
        shop = uow.shops.get(SHOP)
        enrolled = uow.ambassadors.enrolled_customers(shop.id, exact_top(installed, 5))
    assert enrolled == set(exact_top(installed, 5))
    assert "bulkOperationRunQuery" in root_fields(installed)
