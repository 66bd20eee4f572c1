"""Reconciliation against the Shopify emulator over real HTTP: webhooks are dropped (the
emulator queues them in ``manual`` mode and the test throws them away, or delivers them late),
then a run reads the shop's orders through Admin GraphQL and applies what was missed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from adapters.db.tables import orders as orders_table
from adapters.db.tables import reconciliation_runs
from adapters.queue.registry import SCHEDULE
from connector.domain.orders import Order
from connector.ports import Job
from connector.services import reconciliation
from connector.services.reconciliation import ReconcileReport
from tests.conftest import API_KEY, API_SECRET, SHOP, Live, webhook_headers

OTHER = "other-shop.myshopify.com"
LINES = [{"title": "Rain Shell", "price": "100.00", "quantity": 2},
         {"title": "Wool Socks", "price": "20.00", "quantity": 1}]


@pytest.fixture
def ambassador(live: Live) -> dict[str, Any]:
    live.install()
    body: dict[str, Any] = live.api("POST", "/ambassadors", json={
        "email": "ava@example.com", "first_name": "Ava", "last_name": "Martin"}).json()
    assert body["code"] == "AVAM"
    return body


@pytest.fixture
def other(live: Live) -> Live:
    """A second installed shop on the same app."""
    live.emulator.add_shop(OTHER, currency="USD", name="Other Shop")
    shop = Live(live.container, live.emulator, live.url, OTHER)
    shop.install()
    return shop


def buy(live: Live, code: str | None, *, email: str = "friend@example.com",
        shop: str = SHOP, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    order: dict[str, Any] = live.emulator.checkout(
        shop, customer_email=email, discount_codes=[code] if code else [],
        line_items=lines or LINES)
    return order


def drop_webhooks(live: Live) -> int:
    """Shopify gave up on what is queued: it never reaches the app."""
    pending = live.emulator.pending_webhooks
    dropped = len(pending)
    pending.clear()
    return dropped


def reconcile(live: Live, shop: str = SHOP, **kwargs: Any) -> ReconcileReport:
    c = live.container
    kwargs.setdefault("grace", timedelta(0))  # the tests' orders are seconds old
    return reconciliation.reconcile(c.uow, c.orders_source, c.access_token, c.clock, shop,
                                    **kwargs)


def stats(live: Live, ambassador_id: int) -> dict[str, Any]:
    result: dict[str, Any] = live.api("GET", f"/ambassadors/{ambassador_id}").json()["stats"]
    return result


def ledger(live: Live, ambassador_id: int) -> list[tuple[str, str]]:
    items = live.api("GET", f"/ambassadors/{ambassador_id}/ledger").json()["items"]
    return [(e["kind"], e["amount"]) for e in reversed(items)]


def attribution(live: Live, order_id: int) -> Any:
    return live.api("GET", f"/orders/{order_id}/attribution")


def health(live: Live) -> dict[str, Any]:
    response = live.api("GET", "/health/webhooks")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def figures(report: ReconcileReport) -> tuple[int, int, int, int]:
    return report.seen, report.applied, report.found_only_here, report.stale


# --- missed orders, refunds, cancellations ----------------------------------------------------


def test_orders_whose_webhooks_were_missed_are_credited_once_and_late_webhooks_change_nothing(
    live: Live, ambassador: dict[str, Any]
) -> None:
    buy(live, "AVAM", email="first@example.com")  # its webhooks arrive
    live.emulator.webhook_mode = "manual"
    missed = [buy(live, "AVAM", email=f"friend{i}@example.com") for i in range(2)]
    buy(live, None, email="plain@example.com")
    assert attribution(live, missed[0]["id"]).status_code == 404
    assert stats(live, ambassador["id"])["attributed_orders"] == 1

    report = reconcile(live)

    assert report.status == "done" and report.errors == []
    assert figures(report) == (4, 3, 3, 0)
    for order in missed:
        why = attribution(live, order["id"]).json()
        assert why["credited"] is True and why["ambassador_id"] == ambassador["id"]
        assert why["reward"] == "19.80"
    s = stats(live, ambassador["id"])
    assert s["attributed_orders"] == 3 and s["rewards"]["pending"] == "59.40"
    with live.container.engine.connect() as conn:
        sources = conn.execute(sa.select(orders_table.c.source).where(
            orders_table.c.order_id.in_([o["id"] for o in missed]))).scalars().all()
    assert sources == ["reconciliation", "reconciliation"]

    again = reconcile(live)
    assert again.status == "done" and figures(again) == (4, 0, 0, 0)

    live.emulator.flush_webhooks()  # the missed webhooks come after all, a day late
    assert stats(live, ambassador["id"]) == s
    assert ledger(live, ambassador["id"]) == [("commission", "19.80")] * 3


def test_a_missed_refund_and_a_missed_cancellation_are_reversed(
    live: Live, ambassador: dict[str, Any]
) -> None:
    order = buy(live, "AVAM")
    socks = next(li for li in order["line_items"] if li["title"] == "Wool Socks")
    live.emulator.webhook_mode = "manual"
    live.emulator.refund(SHOP, order["id"], line_items=[{"line_item_id": socks["id"],
                                                          "quantity": 1}])
    assert drop_webhooks(live) >= 2  # refunds/create and orders/updated
    assert ledger(live, ambassador["id"]) == [("commission", "19.80")]

    report = reconcile(live)

    assert figures(report) == (1, 1, 0, 0)
    assert ledger(live, ambassador["id"]) == [("commission", "19.80"), ("reversal", "-1.80")]

    live.emulator.cancel(SHOP, order["id"])
    drop_webhooks(live)
    assert figures(reconcile(live)) == (1, 1, 0, 0)
    assert sum(Decimal(amount) for _, amount in ledger(live, ambassador["id"])) == 0
    assert attribution(live, order["id"]).json()["cancelled"] is True
    assert figures(reconcile(live)) == (1, 0, 0, 0)


class Replay:
    """An ``OrderSource`` whose listing is a copy read earlier (before the latest change); a
    single order is read live."""

    def __init__(self, live_source: Any, listing: list[dict[str, Any]]) -> None:
        self._live, self._listing = live_source, listing

    def updated_since(self, *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield from self._listing

    def order(self, shop_domain: str, access_token: str, order_id: int) -> Any:
        return self._live.order(shop_domain, access_token, order_id)


def test_an_older_copy_from_the_store_never_overwrites_the_newer_one_we_hold(
    live: Live, ambassador: dict[str, Any]
) -> None:
    c = live.container
    order = buy(live, "AVAM")
    before_cancel = c.orders_source.order(SHOP, c.access_token(SHOP), order["id"])
    live.emulator.cancel(SHOP, order["id"])  # its webhooks arrive: we hold the cancelled order
    assert attribution(live, order["id"]).json()["cancelled"] is True
    held = Order.from_payload(live.emulator.order(SHOP, order["id"])).updated_at
    assert held is not None
    older = {**before_cancel, "updated_at": (held - timedelta(hours=1)).isoformat()}
    # Shopify's timestamps have whole seconds: a copy read just before the cancellation can
    # carry the same updated_at. It is read again rather than trusted.
    same_second = {**before_cancel, "updated_at": held.isoformat()}

    stale = reconciliation.reconcile(c.uow, Replay(c.orders_source, [older]), c.access_token,
                                     c.clock, SHOP, grace=timedelta(0))
    calls = len(live.emulator.graphql_calls)
    ambiguous = reconciliation.reconcile(c.uow, Replay(c.orders_source, [same_second]),
                                         c.access_token, c.clock, SHOP, grace=timedelta(0))

    assert figures(stale) == (1, 0, 0, 1)
    assert figures(ambiguous) == (1, 0, 0, 0)
    assert [call["operation_name"] for call in live.emulator.graphql_calls[calls:]] == [
        "ReconcileOrder"]
    assert attribution(live, order["id"]).json()["cancelled"] is True
    assert sum(Decimal(amount) for _, amount in ledger(live, ambassador["id"])) == 0


def test_a_newer_version_in_the_store_replaces_ours(live: Live, ambassador: dict[str, Any]) -> None:
    order = buy(live, "AVAM")
    live.emulator.webhook_mode = "manual"
    time.sleep(1.05)  # a later second: Shopify's timestamps have whole seconds
    live.emulator.cancel(SHOP, order["id"])
    drop_webhooks(live)

    report = reconcile(live)

    assert figures(report) == (1, 1, 0, 0)
    assert attribution(live, order["id"]).json()["cancelled"] is True


def test_an_order_bigger_than_a_page_reads_is_read_whole(
    live: Live, ambassador: dict[str, Any]
) -> None:
    lines = [{"title": f"Item {i}", "price": f"{10 + i}.00", "quantity": 2} for i in range(13)]
    order = buy(live, "AVAM", lines=lines)
    ids = [li["id"] for li in order["line_items"]]
    # three refunds (more than a page reads), the first of six lines (more than a page reads)
    for refunded in (ids[0:6], ids[6:7], ids[7:8]):
        live.emulator.refund(SHOP, order["id"], line_items=[
            {"line_item_id": i, "quantity": 1} for i in refunded])
    c = live.container
    read = c.orders_source.order(SHOP, c.access_token(SHOP), order["id"])
    assert read is not None
    mapped, webhook = Order.from_payload(read), Order.from_payload(
        live.emulator.order(SHOP, order["id"]))
    assert len(mapped.lines) == 13 and len(mapped.refunds) == 3
    assert mapped == webhook


# --- throttling ------------------------------------------------------------------------------


def test_throttled_reads_are_paced_and_retried_not_failed(
    live: Live, ambassador: dict[str, Any]
) -> None:
    live.emulator.webhook_mode = "manual"
    for i in range(7):  # two pages
        buy(live, "AVAM", email=f"t{i}@example.com")
    drop_webhooks(live)
    live.emulator.set_fault("throttled", count=3)

    report = reconcile(live)

    assert report.status == "done" and report.errors == []
    assert figures(report) == (7, 7, 7, 0)
    pages = [c for c in live.emulator.graphql_calls if c["operation_name"] == "ReconcileOrders"]
    assert sum(c["throttled"] for c in pages) == 3
    assert [c["cost"] for c in pages if not c["throttled"]] == [717, 717]
    assert stats(live, ambassador["id"])["attributed_orders"] == 7


def test_a_drained_bucket_is_waited_for_once_then_every_page_is_paced(
    live: Live, ambassador: dict[str, Any]
) -> None:
    live.emulator.webhook_mode = "manual"
    for i in range(11):  # three pages
        buy(live, "AVAM", email=f"b{i}@example.com")
    drop_webhooks(live)
    bucket = live.emulator.shop(SHOP).bucket
    # Another app of the shop's used most of the bucket: a page (717 points) must wait ~1.2 s.
    bucket.available, bucket.updated_at = 600.0, time.monotonic()
    calls = len(live.emulator.graphql_calls)

    report = reconcile(live)

    assert report.status == "done" and report.found_only_here == 11
    made = live.emulator.graphql_calls[calls:]
    # the client learns the bucket from the one refusal, then never sends what cannot pass
    assert sum(c["throttled"] for c in made) == 1
    assert [c["operation_name"] for c in made if not c["throttled"]].count("ReconcileOrders") == 3


def test_a_store_error_ends_the_run_failed_and_the_next_run_reads_the_window_again(
    live: Live, ambassador: dict[str, Any]
) -> None:
    c = live.container
    done = reconcile(live)
    live.emulator.webhook_mode = "manual"
    missed = buy(live, "AVAM")
    drop_webhooks(live)
    c.orders_source._gql._max_wait = 0.5  # type: ignore[attr-defined]  # give up quickly
    live.emulator.set_fault("5xx", count=20)

    failed = reconcile(live)

    assert failed.status == "failed" and "PlatformRetryable" in failed.errors[-1]
    live.emulator.clear_faults()
    with c.uow() as uow:
        assert uow.reconciliation.watermark(uow.shops.get(SHOP).id) == done.window_end
    assert attribution(live, missed["id"]).status_code == 404
    retried = reconcile(live)
    assert retried.status == "done" and retried.found_only_here == 1
    assert retried.window_start <= failed.window_start


def test_an_order_that_cannot_be_applied_does_not_stop_the_others_and_is_read_again(
    live: Live, ambassador: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = live.container
    live.emulator.webhook_mode = "manual"
    first, second = buy(live, "AVAM", email="one@example.com"), buy(live, "AVAM",
                                                                      email="two@example.com")
    drop_webhooks(live)
    token = c.access_token(SHOP)
    listing = [c.orders_source.order(SHOP, token, o["id"]) for o in (first, second)]
    unreadable = {"id": 42, "name": "#broken"}  # no currency: not an order we can read
    real_apply = reconciliation.apply_order

    def apply_failing_first(uow: Any, clock: Any, shop_id: int, order: Order, **kw: Any) -> Any:
        if order.id == first["id"]:
            raise RuntimeError("database hiccup")
        return real_apply(uow, clock, shop_id, order, **kw)

    monkeypatch.setattr(reconciliation, "apply_order", apply_failing_first)
    source = Replay(c.orders_source, [unreadable, *listing])
    report = reconciliation.reconcile(c.uow, source, c.access_token, c.clock, SHOP,
                                      grace=timedelta(0))

    assert report.status == "failed" and figures(report) == (3, 1, 1, 0)
    assert report.errors[0] == "order 42: unreadable (order without a currency)"
    assert report.errors[1] == f"order {first['id']}: RuntimeError: database hiccup"
    assert attribution(live, second["id"]).json()["credited"] is True
    with c.uow() as uow:
        assert uow.reconciliation.watermark(uow.shops.get(SHOP).id) is None  # not moved
        run = uow.reconciliation.last(uow.shops.get(SHOP).id)
    assert run is not None and run.status == "failed" and "next run" in (run.error or "")

    monkeypatch.setattr(reconciliation, "apply_order", real_apply)
    retried = reconciliation.reconcile(c.uow, Replay(c.orders_source, [unreadable, *listing]),
                                       c.access_token, c.clock, SHOP, grace=timedelta(0))
    # an unreadable order is reported but does not hold the window: reading it again won't help
    assert retried.status == "done" and figures(retried) == (3, 1, 1, 0)
    assert attribution(live, first["id"]).json()["credited"] is True


# --- one run at a time -----------------------------------------------------------------------


def test_one_run_per_shop_at_a_time_and_a_killed_run_does_not_block_forever(
    live: Live, ambassador: dict[str, Any]
) -> None:
    c = live.container
    now = c.clock.now()
    with c.uow() as uow:
        shop_id = uow.shops.get(SHOP).id
        uow.connection.execute(sa.insert(reconciliation_runs).values(  # type: ignore[attr-defined]
            shop_id=shop_id, status="running", window_start=now, window_end=now,
            started_at=now - timedelta(minutes=5)))
        uow.commit()
    assert reconcile(live).status == "skipped"

    with c.uow() as uow:
        uow.connection.execute(sa.update(reconciliation_runs).values(  # type: ignore[attr-defined]
            started_at=now - timedelta(hours=3)))
        uow.commit()
    assert reconcile(live).status == "done"
    with c.engine.connect() as conn:
        rows = conn.execute(sa.select(reconciliation_runs.c.status, reconciliation_runs.c.error)
                            .order_by(reconciliation_runs.c.id)).all()
    assert [tuple(r) for r in rows] == [("failed", "interrupted"), ("done", None)]


# --- the health figures ----------------------------------------------------------------------


def test_the_health_figures_show_backlog_lag_and_what_reconciliation_found(
    live: Live, ambassador: dict[str, Any]
) -> None:
    assert health(live)["reconciliation"] == {
        "last_run": None, "complete_through": None, "found_only_by_reconciliation_7d": 0}
    order = buy(live, "AVAM")
    # one delivery reached us 90 s after Shopify triggered it
    body = json.dumps(live.emulator.order(SHOP, order["id"])).encode()
    triggered = (datetime.now(UTC) - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    response = httpx.post(f"{live.url}/webhooks/shopify", content=body,
                          headers=webhook_headers("orders/updated", body, triggered_at=triggered))
    assert response.status_code == 200
    live.emulator.webhook_mode = "manual"
    buy(live, "AVAM", email="late1@example.com")
    buy(live, "AVAM", email="late2@example.com")
    drop_webhooks(live)
    report = reconcile(live)

    figures_now = health(live)

    assert figures_now["inbox"]["pending"] == 0 and figures_now["inbox"]["failed"] == 0
    assert figures_now["inbox"]["last_received_at"] is not None
    lag = figures_now["lag"]
    assert lag["window_hours"] == 24 and lag["deliveries"] >= 3
    assert 90 <= lag["max_seconds"] < 120 and lag["p50_seconds"] < 30
    run = figures_now["reconciliation"]["last_run"]
    assert run["id"] == report.run_id and run["status"] == "done" and run["error"] is None
    assert (run["seen"], run["applied"], run["found_only_by_reconciliation"], run["stale"],
            run["errors"]) == (3, 2, 2, 0, 0)
    assert figures_now["reconciliation"]["complete_through"] == run["window_end"]
    assert figures_now["reconciliation"]["found_only_by_reconciliation_7d"] == 2
    reconcile(live)  # finds nothing more: the 7-day figure stays
    assert health(live)["reconciliation"]["found_only_by_reconciliation_7d"] == 2


def test_the_health_endpoint_counts_a_backlog_of_stored_deliveries(
    live: Live, ambassador: dict[str, Any]
) -> None:
    from adapters.queue.inprocess import InProcessJobQueue

    queue = live.container.jobs
    assert isinstance(queue, InProcessJobQueue)
    queue.trigger = lambda job: None  # type: ignore[method-assign]  # workers are down
    body = json.dumps({"id": 1, "currency": "USD"}).encode()
    httpx.post(f"{live.url}/webhooks/shopify", content=body,
               headers=webhook_headers("orders/updated", body))
    inbox = health(live)["inbox"]
    assert inbox["pending"] >= 1 and inbox["oldest_pending_age_seconds"] >= 0  # ours waits


# --- tenants ---------------------------------------------------------------------------------


def test_reconciliation_and_its_figures_stay_within_their_shop(
    live: Live, ambassador: dict[str, Any], other: Live
) -> None:
    delivered = buy(live, None, email="early@example.com")  # its webhooks arrive
    live.emulator.webhook_mode = "manual"
    mine = buy(live, "AVAM")
    theirs = buy(live, None, shop=OTHER, email="buyer@other.example")
    drop_webhooks(live)

    report = reconcile(live)

    assert figures(report) == (2, 1, 1, 0)
    with live.container.engine.connect() as conn:
        stored = conn.execute(sa.select(orders_table.c.order_id)).scalars().all()
    assert sorted(stored) == sorted([delivered["id"], mine["id"]])
    assert health(live)["lag"]["deliveries"] >= 2 and health(other)["lag"]["deliveries"] == 0
    assert health(other)["reconciliation"]["last_run"] is None
    assert health(other)["reconciliation"]["found_only_by_reconciliation_7d"] == 0
    assert health(live)["reconciliation"]["found_only_by_reconciliation_7d"] == 1
    assert attribution(other, mine["id"]).status_code == 404

    theirs_report = reconcile(live, shop=OTHER)
    assert figures(theirs_report) == (1, 1, 1, 0)
    assert attribution(other, theirs["id"]).json()["reason"] == "no_code"
    assert attribution(live, theirs["id"]).status_code == 404
    assert health(other)["reconciliation"]["last_run"]["id"] == theirs_report.run_id
    assert health(live)["reconciliation"]["last_run"]["id"] == report.run_id


def test_the_scheduled_job_queues_one_run_per_installed_shop(
    live: Live, ambassador: dict[str, Any], other: Live
) -> None:
    from adapters.queue.inprocess import InProcessJobQueue
    from entrypoints import jobs

    assert SCHEDULE[Job.RECONCILE_ORDERS] == 900
    queue = live.container.jobs
    assert isinstance(queue, InProcessJobQueue)

    assert jobs.reconcile_orders() == [SHOP, OTHER]

    runs = [args for job, args in queue.history if job is Job.RECONCILE_ORDERS]
    assert runs == [(SHOP,), (OTHER,)]
    for shop in (SHOP, OTHER):
        with live.container.uow() as uow:
            run = uow.reconciliation.last(uow.shops.get(shop).id)
        assert run is not None and run.status == "done"
        # the default grace leaves the last two minutes to webhooks still in flight
        assert run.window_end <= live.container.clock.now() - timedelta(minutes=2)


def test_the_cli_reconciles_with_a_progress_bar(live: Live, ambassador: dict[str, Any]) -> None:
    from click.testing import CliRunner

    from entrypoints import jobs
    from entrypoints.cli import main

    live.emulator.webhook_mode = "manual"
    missed = buy(live, "AVAM")
    drop_webhooks(live)
    settings = live.container.settings
    env = {
        "APP_ENV": "test", "DATABASE_URL": settings.database_url,
        "SHOPIFY_API_KEY": API_KEY, "SHOPIFY_API_SECRET": API_SECRET,
        "SHOPIFY_API_BASE_URL": str(live.emulator.base_url), "APP_URL": live.url,
        "ENCRYPTION_KEY": settings.encryption_key, "SECRET_KEY": settings.secret_key,
        "INSTANCE_PATH": str(settings.instance_path), "REDIS_URL": "",
    }
    try:
        result = CliRunner().invoke(main, ["reconcile", "--shop", SHOP, "--hours", "2"], env=env)
    finally:
        jobs.configure(live.container)
    assert result.exit_code == 0, result.output
    assert f"reconciling {SHOP}" in result.output
    assert "1 applied (1 found only now)" in result.output
    assert attribution(live, missed["id"]).json()["credited"] is True
