"""Domain rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.domain.shops import (
    InvalidShopDomain,
    OfflineToken,
    Shop,
    ShopStatus,
    normalise_shop_domain,
)
from connector.services.inbox import retry_delay, subject_of

NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("test-shop.myshopify.com", "test-shop.myshopify.com"),
        ("https://Test-Shop.myshopify.com/", "test-shop.myshopify.com"),
        (" shop1.myshopify.com ", "shop1.myshopify.com"),
    ],
)
def test_shop_domains_are_normalised(value, expected):
    assert normalise_shop_domain(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        None,
        "shop.example.com",
        "-shop.myshopify.com",
        "shop.myshopify.com.evil.com",
        "sh op.myshopify.com",
        "shop.myshopify.com/admin",
        "https://evil.com?x=.myshopify.com",
    ],
)
def test_anything_else_is_not_a_shop(value):
    with pytest.raises(InvalidShopDomain):
        normalise_shop_domain(value)


@given(st.text(max_size=80))
def test_normalised_domains_always_match_the_pattern(value):
    try:
        domain = normalise_shop_domain(value)
    except InvalidShopDomain:
        return
    assert domain.endswith(".myshopify.com") and domain == domain.lower()


def token(expires_in=timedelta(hours=1), refresh_in=timedelta(days=90)):
    return OfflineToken("a", "", NOW + expires_in, "r", NOW + refresh_in)


def test_tokens_are_refreshed_five_minutes_before_they_expire():
    assert token(timedelta(minutes=6)).usable_at(NOW)
    assert not token(timedelta(minutes=4)).usable_at(NOW)
    assert token(timedelta(minutes=-4)).refreshable_at(NOW)
    assert not token(refresh_in=timedelta(seconds=-1)).refreshable_at(NOW)


def test_an_uninstalled_shop_has_no_valid_token_and_reinstall_restores_it():
    shop = Shop(
        id=1,
        domain="s.myshopify.com",
        status=ShopStatus.INSTALLED,
        token=token(),
        installed_at=NOW - timedelta(days=3),
    )
    gone = shop.uninstalled(NOW)
    assert not gone.has_valid_token(NOW) and gone.token is None
    back = gone.with_token(token(), NOW + timedelta(days=1))
    assert back.installed and back.installed_at == NOW + timedelta(days=1)


def test_retry_back_off_grows_and_is_capped():
    delays = [retry_delay(n) for n in range(1, 12)]
    assert delays == sorted(delays)
    assert delays[0] == timedelta(seconds=30) and delays[-1] == timedelta(hours=1)


@pytest.mark.parametrize(
    "topic,payload,expected",
    [
        ("orders/create", {"id": 5, "customer": {"id": 9}}, (9, 5)),
        ("orders/paid", {"id": "5", "customer": None}, (None, 5)),
        ("refunds/create", {"order_id": 5}, (None, 5)),
        ("customers/update", {"id": 9}, (9, None)),
        ("customers/data_request", {"customer": {"id": 9}}, (9, None)),
        ("customers/redact", {"customer": {"id": 9}}, (None, None)),
        ("orders/create", {"id": "not-a-number"}, (None, None)),
    ],
)
def test_subject_of_a_delivery(topic, payload, expected):
    assert subject_of(topic, payload) == expected


def test_a_later_version_supersedes_and_a_same_second_tie_goes_to_the_further_state():
    from dataclasses import replace as _replace
    from datetime import UTC, datetime, timedelta

    from connector.domain.orders import Order, supersedes

    t = datetime(2026, 7, 1, 12, tzinfo=UTC)
    base = Order(1, "#1", t, t, "USD", "USD", "paid", None, False, (), (), None, None, None,
                 None, None)
    pending = _replace(base, financial_status="pending")
    cancelled = _replace(base, cancelled_at=t)
    later = _replace(pending, updated_at=t + timedelta(seconds=1))
    undated = _replace(base, updated_at=None)
    assert supersedes(later, cancelled)  # a later version wins whatever it says
    assert not supersedes(cancelled, later)
    assert not supersedes(pending, base)  # same second: payment is not undone
    assert supersedes(base, pending)
    assert not supersedes(base, cancelled) and supersedes(cancelled, base)
    assert supersedes(base, base)  # a full tie: the later arrival
    assert not supersedes(undated, base) and supersedes(base, undated)
