"""Orders credited to ambassadors from Shopify's signed webhooks, through the whole system:
emulator checkout → signed webhooks → inbox → attribution → ledger → API."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import SHOP, webhook_headers


@pytest.fixture
def ambassador(live):
    live.install()
    body = live.api("POST", "/ambassadors", json={
        "email": "ava@example.com", "first_name": "Ava", "last_name": "Martin"}).json()
    assert body["code"] == "AVAM"
    return body


def buy(live, code, *, email="friend@example.com", lines=None):
    return live.emulator.checkout(
        SHOP, customer_email=email, discount_codes=[code] if code else [],
        line_items=lines or [{"title": "Rain Shell", "price": "100.00", "quantity": 2},
                             {"title": "Wool Socks", "price": "20.00", "quantity": 1}])


def stats(live, ambassador_id):
    return live.api("GET", f"/ambassadors/{ambassador_id}").json()["stats"]


def attribution(live, order_id):
    return live.api("GET", f"/orders/{order_id}/attribution").json()


def test_an_order_with_the_code_in_any_case_is_credited_with_an_explanation(live, ambassador):
    order = buy(live, "aVaM")
    why = attribution(live, order["id"])
    assert why["credited"] is True and why["ambassador_id"] == ambassador["id"]
    assert why["code"] == "AVAM" and why["rule"] == "largest_discount_then_first_applied"
    assert why["reason"] == "credited" and why["candidates"][0]["verdict"] == "credited"
    # 10 % friend discount on 220.00 → paid 198.00; 10 % commission → 19.80, pending (hold)
    assert why["revenue"] == "198.00" and why["reward"] == "19.80"
    s = stats(live, ambassador["id"])
    assert s["attributed_orders"] == 1 and s["attributed_revenue"] == "198.00"
    assert s["rewards"] == {"pending": "19.80", "approved": "0.00", "paid": "0.00",
                            "reversed": "0.00"}
    gid = live.api("GET", f"/orders/gid://shopify/Order/{order['id']}/attribution").json()
    assert gid["order_id"] == order["id"]


def test_the_same_order_again_as_paid_or_replayed_changes_nothing(live, ambassador):
    order = buy(live, "AVAM")
    before = stats(live, ambassador["id"])
    body = json.dumps(live.emulator.order(SHOP, order["id"])).encode()
    for topic in ("orders/paid", "orders/updated", "orders/create"):
        response = httpx.post(f"{live.url}/webhooks/shopify", content=body,
                                            headers=webhook_headers(topic, body))
        assert response.status_code == 200
    assert stats(live, ambassador["id"]) == before
    ledger = live.api("GET", f"/ambassadors/{ambassador['id']}/ledger").json()["items"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("commission", "19.80")]


def test_a_partial_refund_reverses_exactly_its_share_and_a_cancel_the_rest(live, ambassador):
    order = buy(live, "AVAM")
    socks = next(li for li in order["line_items"] if li["title"] == "Wool Socks")
    live.emulator.refund(SHOP, order["id"], line_items=[{"line_item_id": socks["id"],
                                                          "quantity": 1}])
    ledger = live.api("GET", f"/ambassadors/{ambassador['id']}/ledger").json()["items"]
    # socks paid 18.00 after the 10 % discount: 10 % of it reversed, nothing more
    assert [(e["kind"], e["amount"]) for e in reversed(ledger)] == [
        ("commission", "19.80"), ("reversal", "-1.80")]
    assert stats(live, ambassador["id"])["rewards"]["reversed"] == "1.80"
    live.emulator.cancel(SHOP, order["id"])
    ledger = live.api("GET", f"/ambassadors/{ambassador['id']}/ledger").json()["items"]
    assert sum(Decimal(e["amount"]) for e in ledger) == 0
    s = stats(live, ambassador["id"])
    assert s["attributed_orders"] == 0 and s["rewards"]["reversed"] == "19.80"
    assert attribution(live, order["id"])["cancelled"] is True


def test_the_ambassador_buying_with_their_own_code_is_not_credited(live, ambassador):
    order = buy(live, "avam", email="Ava+deals@Example.com")
    why = attribution(live, order["id"])
    assert why["credited"] is False and why["reason"] == "self_referral_email"
    assert stats(live, ambassador["id"])["attributed_orders"] == 0


def test_orders_without_ambassador_codes_say_why(live, ambassador):
    plain = buy(live, None)
    assert attribution(live, plain["id"])["reason"] == "no_code"
    missing = live.api("GET", "/orders/999999999/attribution")
    assert missing.status_code == 404 and "reconciliation" in missing.json()["error"]["message"]


def test_pausing_later_does_not_claw_back_an_order_credited_before(live, ambassador):
    order = buy(live, "AVAM")
    live.api("POST", f"/ambassadors/{ambassador['id']}/status", json={"status": "paused"})
    body = json.dumps(live.emulator.order(SHOP, order["id"])).encode()
    httpx.post(f"{live.url}/webhooks/shopify", content=body,
               headers=webhook_headers("orders/updated", body))
    why = attribution(live, order["id"])
    assert why["credited"] is True and why["reason"] == "credited"
    assert stats(live, ambassador["id"])["rewards"]["pending"] == "19.80"


def test_a_code_of_a_paused_ambassador_does_not_credit_new_orders(live, ambassador):
    live.api("POST", f"/ambassadors/{ambassador['id']}/status", json={"status": "paused"})
    order = buy(live, None)
    body = json.loads(json.dumps(live.emulator.order(SHOP, order["id"])))
    body["discount_codes"] = [{"code": "avam", "amount": "5.00", "type": "fixed_amount"}]
    raw = json.dumps(body).encode()
    httpx.post(f"{live.url}/webhooks/shopify", content=raw,
               headers=webhook_headers("orders/create", raw))
    why = attribution(live, order["id"])
    assert why["credited"] is False and why["reason"] == "ambassador_not_active"


def test_customers_redact_erases_the_buyer_and_an_ambassador_who_asks(live, ambassador):
    order = buy(live, "AVAM", email="friend@example.com")
    with live.container.engine.connect() as conn:
        buyer = conn.execute(sa.text("SELECT customer_id FROM orders WHERE order_id = :o"),
                             {"o": order["id"]}).scalar_one()
    for customer_id, order_ids in ((buyer, [order["id"]]),):
        live.emulator.send_webhook(SHOP, "customers/redact", {
            "shop_domain": SHOP, "customer": {"id": customer_id}, "orders_to_redact": order_ids})
    with live.container.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT email, phone, customer_id FROM orders WHERE order_id = :o"),
            {"o": order["id"]}).one()
    assert tuple(row) == (None, None, None)
    # the credit itself stays: it is the merchant's financial record, tied to ids only
    assert attribution(live, order["id"])["credited"] is True

    person = live.emulator.add_customer(SHOP, email="kai@example.com", first_name="Kai",
                                        last_name="Ito")
    enrolled = live.api("POST", "/ambassadors",
                        json={"customer_id": person["admin_graphql_api_id"]}).json()
    live.emulator.send_webhook(SHOP, "customers/redact", {
        "shop_domain": SHOP, "customer": {"id": person["id"]}, "orders_to_redact": []})
    erased = live.api("GET", f"/ambassadors/{enrolled['id']}").json()
    assert erased["status"] == "removed" and "kai" not in erased["email"]
    assert erased["first_name"] == "" and erased["customer_id"] is None


def test_rewards_stay_pending_during_the_hold_then_are_approved(live, ambassador):
    from datetime import timedelta

    from adapters.clock import FakeClock
    from connector.services.attribution import approve_due_rewards

    buy(live, "AVAM")
    c = live.container
    assert approve_due_rewards(c.uow, FakeClock(c.clock.now() + timedelta(days=29))) == 0
    assert stats(live, ambassador["id"])["rewards"]["pending"] == "19.80"
    assert approve_due_rewards(c.uow, FakeClock(c.clock.now() + timedelta(days=31))) == 1
    rewards = stats(live, ambassador["id"])["rewards"]
    assert rewards["pending"] == "0.00" and rewards["approved"] == "19.80"
    assert approve_due_rewards(c.uow, FakeClock(c.clock.now() + timedelta(days=32))) == 0
