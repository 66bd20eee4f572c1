"""What reconciliation applies (``judge``) and where a run starts reading (``window_start``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connector.domain.orders import Line, Order, Refund
from connector.services.reconciliation import APPLY, Verdict, judge, window_start

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def order(**changes: object) -> Order:
    base = Order(
        id=1, name="#1001", updated_at=T0, created_at=T0, currency="USD",
        presentment_currency="USD", financial_status="paid", cancelled_at=None, test=False,
        codes=(("AVAM", Decimal("10.00")),),
        lines=(Line(11, 1, Decimal("100.00"), Decimal("10.00"), Decimal("90.00")),),
        customer_id=5, customer_created_at=T0, email="a@example.com", phone="5550101",
        address="abc", refunds=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


REFUND = Refund(7, 1, T0, ((11, 1, Decimal("90.00")),))


def test_an_order_never_stored_is_new() -> None:
    assert judge(order(), None) is Verdict.NEW


def test_the_same_version_adds_nothing() -> None:
    assert judge(order(), order()) is Verdict.SAME
    assert Verdict.SAME not in APPLY


def test_a_later_version_is_applied_and_an_earlier_one_is_stale() -> None:
    later = order(updated_at=T0 + timedelta(seconds=1), cancelled_at=T0)
    assert judge(later, order()) is Verdict.NEWER
    assert judge(order(), later) is Verdict.STALE
    assert Verdict.STALE not in APPLY


def test_refunds_we_lack_are_applied_even_from_an_older_version() -> None:
    assert judge(order(refunds=(REFUND,)), order()) is Verdict.REFUNDS
    stored = order(updated_at=T0 + timedelta(minutes=5))
    assert judge(order(refunds=(REFUND,)), stored) is Verdict.REFUNDS
    # refunds we hold that the store's copy leaves out are not a reason
    assert judge(order(), order(refunds=(REFUND,))) is Verdict.SAME


def test_same_second_different_content_is_a_change() -> None:
    assert judge(order(cancelled_at=T0), order()) is Verdict.CHANGED
    assert judge(order(financial_status="refunded"), order()) is Verdict.CHANGED
    assert judge(order(codes=()), order()) is Verdict.CHANGED


@pytest.mark.parametrize(
    "stored_differs",
    [
        # what customers/redact blanks must not read as a change (it would be restored)
        {"email": None, "phone": None, "address": None, "customer_id": None,
         "customer_created_at": None},
        # shipping discounts count in a webhook's code amounts, not in the store's line read
        {"codes": (("AVAM", Decimal("15.00")),)},
        {"name": "#1001-A"},
    ],
)
def test_what_the_ledger_does_not_depend_on_is_not_a_change(stored_differs: dict) -> None:
    assert judge(order(), order(**stored_differs)) is Verdict.SAME


def test_lines_listed_in_another_order_are_not_a_change() -> None:
    two = (Line(11, 1, Decimal("100.00"), Decimal("10.00"), Decimal("90.00")),
           Line(12, 2, Decimal("5.00"), Decimal("0"), Decimal("10.00")))
    assert judge(order(lines=two), order(lines=two[::-1])) is Verdict.SAME
    assert judge(order(lines=two), order(lines=two[:1])) is Verdict.CHANGED


def test_a_snapshot_without_a_timestamp_is_replaced() -> None:
    assert judge(order(), order(updated_at=None)) is Verdict.NEWER


NOW = datetime(2026, 11, 22, 12, 0, 30, 500_000, tzinfo=UTC)


def start(**kwargs: object) -> datetime:
    options: dict = {"watermark": None, "installed_at": None, "window": timedelta(hours=72),
                     "overlap": timedelta(minutes=30), **kwargs}
    return window_start(NOW, **options)


def test_a_run_starts_at_the_last_complete_window_less_the_overlap() -> None:
    assert start(watermark=NOW - timedelta(minutes=15)) == datetime(
        2026, 11, 22, 11, 15, 30, tzinfo=UTC)


def test_a_first_run_starts_at_the_install_in_whole_seconds() -> None:
    installed = NOW - timedelta(hours=1)
    assert start(installed_at=installed) == installed.replace(microsecond=0)


def test_a_run_never_reads_further_back_than_the_window() -> None:
    assert start(watermark=NOW - timedelta(days=10)) == (NOW - timedelta(hours=72)).replace(
        microsecond=0)
    assert start(installed_at=NOW - timedelta(days=10)) == (NOW - timedelta(hours=72)).replace(
        microsecond=0)
    assert start() == (NOW - timedelta(hours=72)).replace(microsecond=0)


def test_an_explicit_since_only_reaches_further_back() -> None:
    watermark = NOW - timedelta(hours=5)
    assert start(watermark=watermark, since=NOW - timedelta(hours=1)) == (
        watermark - timedelta(minutes=30)).replace(microsecond=0)
    assert start(watermark=watermark, since=NOW - timedelta(days=30)) == (
        NOW - timedelta(days=30)).replace(microsecond=0)
