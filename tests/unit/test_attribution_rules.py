"""Attribution rules and reward amounts on the pure domain, for the awkward orders."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from connector.domain.attribution import AmbassadorIdentity, Reason, attribute
from connector.domain.ledger import EntryKind, commission_base, plan_entries, target_reward
from connector.domain.money import Money
from connector.domain.orders import BadOrder, Order, Refund, normalise_email, normalise_phone

FIXTURE = Path(__file__).parents[1] / "fixtures" / "shopify"
FIXTURE = FIXTURE / "order_with_discount_code_TENOFF.json"
REAL = json.loads(FIXTURE.read_text())["order"]

A = AmbassadorIdentity(1, "AVAM", True, customer_id=10, email="ava@example.com",
                       phones=frozenset({"5551234567"}), addresses=frozenset({"addr-1"}))
B = AmbassadorIdentity(2, "LEOS", True)
GONE = AmbassadorIdentity(3, "OLDCODE", False)
BY_CODE = {a.code: a for a in (A, B, GONE)}


def order(codes=(("avam", "5.00"),), **extra):
    payload = {
        "id": 1, "currency": "USD", "financial_status": "paid", "email": "buyer@example.com",
        "discount_codes": [{"code": c, "amount": a, "type": "fixed_amount"} for c, a in codes],
        "line_items": [{"id": 7, "quantity": 2, "price": "50.00",
                        "discount_allocations": [{"amount": "5.00"}]}],
        **extra,
    }
    return Order.from_payload(payload)


def test_the_real_shopify_order_fixture_parses_with_its_refund():
    o = Order.from_payload(REAL)
    assert o.codes == (("TENOFF", Decimal("10.00")),)
    assert o.refunds and o.refunds[0].lines[0][2] == Decimal("195.66")
    assert o.paid and o.currency == "USD"


def test_codes_match_in_any_case():
    assert attribute(order((("aVaM", "5.00"),)), BY_CODE).ambassador_id == 1


def test_five_codes_the_larger_discount_wins_and_the_others_say_why():
    result = attribute(order((("SUMMER", "9.00"), ("avam", "5.00"), ("LEOS", "7.00"),
                              ("X", "1.00"), ("OLDCODE", "20.00"))), BY_CODE)
    assert result.ambassador_id == 2 and result.code == "LEOS"
    verdicts = {c.code: c.verdict for c in result.candidates}
    assert verdicts == {"AVAM": Reason.ANOTHER_CODE_WON, "LEOS": Reason.CREDITED,
                        "OLDCODE": Reason.AMBASSADOR_NOT_ACTIVE}


def test_a_tie_goes_to_the_code_applied_first():
    assert attribute(order((("LEOS", "5.00"), ("AVAM", "5.00"))), BY_CODE).ambassador_id == 2


@pytest.mark.parametrize(
    "codes,extra,reason",
    [((), {}, Reason.NO_CODE),
     ((("NOBODY", "5.00"),), {}, Reason.UNKNOWN_CODE),
     ((("OLDCODE", "5.00"),), {}, Reason.AMBASSADOR_NOT_ACTIVE),
     ((("AVAM", "5.00"),), {"test": True}, Reason.TEST_ORDER),
     ((("AVAM", "5.00"),), {"customer": {"id": 10}}, Reason.SELF_REFERRAL_CUSTOMER),
     ((("AVAM", "5.00"),), {"email": "A.V.A+promo@example.com".replace(".", "", 2)},
      Reason.SELF_REFERRAL_EMAIL),
     ((("AVAM", "5.00"),), {"phone": "+1 (555) 123-4567"}, Reason.SELF_REFERRAL_PHONE)],
)
def test_orders_not_credited_say_why(codes, extra, reason):
    result = attribute(order(codes, **extra), BY_CODE)
    assert not result.credited and result.reason is reason and result.explanation


def test_new_customers_only_refuses_returning_buyers():
    result = attribute(order(), BY_CODE, new_customers_only=True, returning_customer=True)
    assert result.reason is Reason.NOT_NEW_CUSTOMER


def test_gmail_dots_and_plus_tags_are_one_identity():
    assert normalise_email("Jo.Hn+x@GoogleMail.com") == normalise_email("john@gmail.com")
    assert normalise_email("jo.hn@example.com") != normalise_email("john@example.com")
    assert normalise_phone("+1 (555) 123-4567") == normalise_phone("555.123.4567")


def test_commission_is_on_what_was_paid_after_discounts_without_tax_or_shipping():
    o = order(total_tax="8.00", shipping_lines=[{"price": "10.00"}])
    assert commission_base(o).shop == Decimal("95.00")
    assert target_reward(o, Decimal("10")) == Money(Decimal("9.50"), "USD")


def test_zero_total_and_unpaid_orders_carry_no_reward():
    free = order(line_items=[{"id": 7, "quantity": 1, "price": "0.00"}])
    assert target_reward(free, Decimal("10")).amount == 0
    unpaid = order(financial_status="pending")
    assert target_reward(unpaid, Decimal("10")).amount == 0


def test_gift_cards_earn_no_commission():
    o = order(line_items=[{"id": 8, "quantity": 1, "price": "100.00", "gift_card": True}])
    assert target_reward(o, Decimal("10")).amount == 0


def test_a_refund_larger_than_the_order_reverses_no_more_than_was_credited():
    o = order()
    huge = Refund(9, 1, None, ((7, 5, Decimal("1000.00")),))
    refunded = Order(**{**o.__dict__, "refunds": (huge,)})
    assert target_reward(refunded, Decimal("10")).amount == 0
    entries = plan_entries({1: target_reward(refunded, Decimal("10"))},
                           {1: target_reward(o, Decimal("10"))}, "USD", "refund")
    assert [(e.kind, e.amount.amount) for e in entries] == [(EntryKind.REVERSAL,
                                                             Decimal("-9.50"))]


def test_another_currency_is_booked_in_the_shop_currency_with_presentment_kept():
    o = order(currency="EUR", presentment_currency="CHF",
              line_items=[{"id": 7, "quantity": 1, "price": "80.00",
                           "price_set": {"shop_money": {"amount": "80.00"},
                                         "presentment_money": {"amount": "76.00"}}}])
    assert target_reward(o, Decimal("10")) == Money(Decimal("8.00"), "EUR")
    assert commission_base(o).presentment == Decimal("76.00")


def test_cancellation_reverses_the_rest():
    o = order(cancelled_at="2026-07-02T00:00:00Z")
    entries = plan_entries({1: target_reward(o, Decimal("10"))},
                           {1: Money(Decimal("9.50"), "USD")}, "USD", "cancel")
    assert [(e.kind, e.amount.amount) for e in entries] == [(EntryKind.REVERSAL,
                                                             Decimal("-9.50"))]


@pytest.mark.parametrize("payload", [{}, {"id": "x", "currency": "USD"}, {"id": 1},
                                     {"id": 1, "currency": "USD", "line_items": [{}]}])
def test_unreadable_orders_are_refused_with_a_reason(payload):
    with pytest.raises(BadOrder):
        Order.from_payload(payload)
