"""Reward fulfilment through the whole system: orders credited from signed webhooks, the hold
ended, a payout run through the API, and the reward created in the Shopify emulator exactly
once — through crashes between Shopify's answer and our commit, duplicate jobs, throttling and
permanent refusals."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from adapters.clock import FakeClock
from adapters.db.tables import shops
from connector.services import attribution, payouts
from tests.conftest import SHOP


class Killed(BaseException):
    """The worker process died here (nothing after this line of the job runs)."""


class DiesAfterShopify:
    """The real Shopify adapter, but the worker dies right after Shopify answered."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.calls += 1
            method(*args, **kwargs)
            raise Killed(name)

        return call


def setup_program(live, **payout_settings):
    live.install()
    settings = {"hold_days": 0, "payouts": payout_settings}
    response = live.api("PATCH", "/program/settings", json=settings)
    assert response.status_code == 200, response.text
    customer = live.emulator.add_customer(SHOP, email="ava@example.com", first_name="Ava",
                                          last_name="Martin")
    ambassador = live.api("POST", "/ambassadors",
                          json={"customer_id": customer["admin_graphql_api_id"]}).json()
    assert ambassador["code"]
    return ambassador, customer


FRIENDS = iter(range(1, 10_000))


def earn(live, ambassador, *, price="100.00", quantity=2):
    """A new friend buys with the code; the hold (0 days) ends. 10 % off, 10 % commission."""
    order = live.emulator.checkout(
        SHOP, customer_email=f"friend{next(FRIENDS)}@example.com",
        discount_codes=[ambassador["code"]],
        line_items=[{"title": "Rain Shell", "price": price, "quantity": quantity}])
    attribution.approve_due_rewards(live.container.uow, live.container.clock)
    return order


def rewards(live, ambassador):
    return live.api("GET", f"/ambassadors/{ambassador['id']}/rewards").json()


def stats(live, ambassador):
    return live.api("GET", f"/ambassadors/{ambassador['id']}").json()["stats"]["rewards"]


def run(live, period):
    response = live.api("POST", "/payouts/runs", json={"period": period})
    assert response.status_code == 201, response.text
    return response.json()


def only_payout(live):
    items = live.api("GET", "/payouts").json()["items"]
    assert len(items) == 1, items
    return items[0]


def reward_discount(emulated, code):
    for discount in emulated.discounts.values():
        for code_id in discount.code_ids:
            if emulated.redeem_codes[code_id].code.upper() == code.upper():
                return discount
    raise AssertionError(f"no discount holds {code}")


def gift_cards(live):
    return list(live.emulator.shop(SHOP).gift_cards.values())


def test_a_gift_card_payout_is_created_once_and_the_balance_moves_to_paid(live):
    ava, customer = setup_program(live, form="gift_card")
    earn(live, ava)  # paid 180.00 → 18.00
    assert rewards(live, ava)["payable"] == "18.00"
    report = run(live, "2026-12")
    assert report["created"] == 1 and report["by_form"] == {"gift_card": "18.00"}
    payout = only_payout(live)
    assert payout["state"] == "fulfilled" and payout["value"] == "18.00"
    cards = gift_cards(live)
    assert len(cards) == 1
    assert cards[0].initial_value == Decimal("18.00") and cards[0].customer_id == customer["id"]
    assert cards[0].note == payout["idempotency_key"]
    assert payout["external_hint"] == cards[0].code[-4:]
    assert stats(live, ava) == {"pending": "0.00", "approved": "0.00", "paid": "18.00",
                                "reversed": "0.00"}
    # The same run again creates nothing; another run finds nothing payable.
    assert live.api("POST", "/payouts/runs", json={"period": "2026-12"}).status_code == 409
    assert run(live, "2027-01")["created"] == 0
    # The same job queued again (a duplicate in RQ) does nothing.
    ctx = live.container.fulfilment()
    assert payouts.fulfil_payout(ctx, SHOP, payout["id"]) == "skipped:fulfilled"
    assert len(gift_cards(live)) == 1
    ledger = live.api("GET", f"/ambassadors/{ava['id']}/ledger").json()["items"]
    assert [e["kind"] for e in ledger][:2] == ["payout", "commission"]
    assert sum(Decimal(e["amount"]) for e in ledger) == 0
    history = live.api("GET", f"/payouts/{payout['id']}").json()["history"]
    assert [h["to"] for h in history] == ["approved", "fulfilling", "fulfilled"]


def test_store_credit_with_the_bonus_for_choosing_it(live):
    ava, customer = setup_program(live, form="cash", choosable_forms=["store_credit"],
                                  store_credit_bonus_percent="10")
    response = live.api("PUT", f"/ambassadors/{ava['id']}/payout-preference",
                        json={"form": "store_credit"})
    assert response.status_code == 200, response.text
    earn(live, ava)
    run(live, "2026-12")
    payout = only_payout(live)
    assert (payout["form"], payout["amount"], payout["value"]) == ("store_credit", "18.00", "19.80")
    assert payout["state"] == "fulfilled"
    accounts = list(live.emulator.shop(SHOP).store_credit_accounts.values())
    assert len(accounts) == 1 and accounts[0].balance == Decimal("19.80")
    assert accounts[0].customer_id == customer["id"]
    # the bonus is the program's cost: the balance moved by the amount, not the value
    assert stats(live, ava)["paid"] == "18.00" and rewards(live, ava)["payable"] == "0.00"
    refused = live.api("PUT", f"/ambassadors/{ava['id']}/payout-preference",
                       json={"form": "gift_card"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "form_not_offered"


def test_reward_code_and_free_product_code_are_single_use_codes_for_the_ambassador(live):
    ava, customer = setup_program(
        live, form="discount_code", choosable_forms=["free_product"],
        free_product_id="gid://shopify/Product/777", free_product_value="15.00")
    earn(live, ava)
    run(live, "2026-12")
    payout = only_payout(live)
    assert payout["state"] == "fulfilled" and payout["external_hint"].startswith("RWD-")
    emulated = live.emulator.shop(SHOP)
    discount = reward_discount(emulated, payout["external_hint"])
    assert discount.usage_limit == 1 and discount.customer_ids == {customer["id"]}
    assert discount.amount == Decimal("18.00") and discount.product_ids is None
    live.api("PUT", f"/ambassadors/{ava['id']}/payout-preference", json={"form": "free_product"})
    earn(live, ava)  # 18.00 more: one free product (15.00), 3.00 stays
    run(live, "2027-01")
    newest = live.api("GET", "/payouts").json()["items"][0]
    assert (newest["form"], newest["amount"], newest["state"]) == ("free_product", "15.00",
                                                                   "fulfilled")
    assert rewards(live, ava)["payable"] == "3.00"
    free = reward_discount(emulated, newest["external_hint"])
    assert free.product_ids == {777} and free.percentage == 1.0
    # At checkout the code takes exactly that product off, nothing else.
    order = live.emulator.checkout(
        SHOP, customer_email="ava@example.com", discount_codes=[newest["external_hint"]],
        line_items=[{"title": "Gift", "price": "15.00", "quantity": 1, "product_id": 777},
                    {"title": "Other", "price": "40.00", "quantity": 1, "product_id": 5}])
    assert Decimal(order["total_discounts"]) == Decimal("15.00")


def test_a_worker_killed_after_shopify_answered_pays_once(live):
    """At each step of a fulfilment the worker dies; the next attempt finds what the dead one
    created (note, code, or the credit transaction) and records it instead of paying again."""
    ava, _ = setup_program(live, form="gift_card", choosable_forms=["store_credit",
                                                                     "discount_code"])
    real = live.container.rewards
    for form in ("gift_card", "store_credit", "discount_code"):
        clock = FakeClock(datetime.now(UTC))  # leases and back-offs on a clock the test moves
        live.api("PUT", f"/ambassadors/{ava['id']}/payout-preference", json={"form": form})
        earn(live, ava)
        dying = DiesAfterShopify(real)
        live.container.rewards = dying
        with pytest.raises(Killed):
            payouts.run_payouts(live.container.uow, live.container.jobs, live.container.clock,
                                SHOP, period=f"run-{form}")
        assert dying.calls == 1
        payout = live.api("GET", "/payouts").json()["items"][0]
        assert payout["state"] == "fulfilling"  # Shopify has it; we never wrote it down
        live.container.rewards = real
        ctx = replace(live.container.fulfilment(), clock=clock)
        assert payouts.fulfil_payout(ctx, SHOP, payout["id"]) == "busy"  # lease still held
        clock.advance(minutes=6)
        # the sweeper sees the expired lease and queues a takeover (the in-process queue runs
        # it at once, on the system clock, for which the lease still holds: "busy")
        assert payouts.fulfil_due(live.container.uow, live.container.jobs, clock) == 1
        outcome = payouts.fulfil_payout(ctx, SHOP, payout["id"])
        after = live.api("GET", f"/payouts/{payout['id']}").json()
        assert (outcome, after["state"]) == ("found", "fulfilled"), after["error"]
    emulated = live.emulator.shop(SHOP)
    assert len(emulated.gift_cards) == 1
    assert sum(len(a.transactions) for a in emulated.store_credit_accounts.values()) == 1
    assert len([r for r in emulated.redeem_codes.values() if r.code.startswith("RWD-")]) == 1
    assert stats(live, ava)["paid"] == "54.00"


def test_throttling_for_minutes_backs_off_then_pays_once(live):
    ava, _ = setup_program(live, form="gift_card")
    earn(live, ava)
    live.container.shopify.graphql._sleep = lambda seconds: None  # no real waiting in tests
    live.emulator.set_fault("429", count=15)  # three attempts' worth (each tries 5 times)
    run(live, "2026-12")
    payout = only_payout(live)
    # In the job, Shopify's 429s needed longer than a job may wait: it came back, "throttled"
    history = live.api("GET", f"/payouts/{payout['id']}").json()["history"]
    assert payout["state"] == "approved" and history[-1]["reason"].startswith("throttled:")
    clock = FakeClock(datetime.now(UTC))  # leases and back-offs on a clock the test moves
    ctx = replace(live.container.fulfilment(), clock=clock)
    assert payouts.fulfil_payout(ctx, SHOP, payout["id"]) == "skipped:approved"  # backing off
    outcomes = []
    for _ in range(3):
        clock.advance(hours=1)
        outcomes.append(payouts.fulfil_payout(ctx, SHOP, payout["id"]))
    assert outcomes == ["retry", "retry", "found"] or outcomes == ["retry", "retry", "fulfilled"]
    assert len(gift_cards(live)) == 1
    assert live.api("GET", f"/payouts/{payout['id']}").json()["attempts"] == 4


def test_a_long_throttle_gives_the_worker_back_and_the_payout_comes_again(live):
    """The shop's bucket is empty and refills at a trickle: the job does not sleep ~100 s on it
    (its worker serves other shops meanwhile); the payout goes back to approved as
    "throttled" (Shopify ran nothing: it may still be released) and pays once later."""
    import time

    ava, _ = setup_program(live, form="gift_card")
    earn(live, ava)
    bucket = live.emulator.shop(SHOP).bucket
    normal_rate = bucket.restore_rate
    bucket.refill(time.monotonic())
    bucket.available, bucket.restore_rate = 0.0, 0.1
    slept: list[float] = []
    live.container.shopify.graphql._sleep = slept.append  # what the client would have waited
    run(live, "2026-12")  # queues the fulfilment, run inline here
    assert max(slept, default=0) <= 5  # the job came back instead of waiting ~100 s
    payout = live.api("GET", f"/payouts/{only_payout(live)['id']}").json()
    assert payout["state"] == "approved" and gift_cards(live) == []
    assert payout["history"][-1]["reason"].startswith("throttled:")
    assert not any((h["reason"] or "").startswith("retry:") for h in payout["history"])
    bucket.refill(time.monotonic())
    bucket.available, bucket.restore_rate = bucket.maximum, normal_rate
    clock = FakeClock(datetime.now(UTC))
    clock.advance(minutes=5)
    ctx = replace(live.container.fulfilment(), clock=clock)
    assert payouts.fulfil_payout(ctx, SHOP, payout["id"]) in ("fulfilled", "found")
    assert len(gift_cards(live)) == 1


def test_missing_scope_parks_the_payout_and_replay_pays_after_the_fix(live):
    live.emulator.authority.scopes = "read_customers,write_customers,read_orders,write_discounts"
    ava, _ = setup_program(live, form="gift_card")
    earn(live, ava)
    run(live, "2026-12")
    payout = only_payout(live)
    assert payout["state"] == "failed" and payout["error_code"] == "missing_scope"
    assert "write_gift_cards" in payout["error"]
    dead = live.api("GET", "/payouts", params={"state": "failed"}).json()["items"]
    assert [p["id"] for p in dead] == [payout["id"]]
    assert live.api("GET", "/payouts/budget").json()["failed"] == 1
    assert gift_cards(live) == []
    # The merchant grants the scope (reinstall) and replays from the dead-letter view.
    live.emulator.authority.scopes += ",write_gift_cards"
    live.install()
    with live.container.uow() as uow:  # the token exchange only runs for a missing token
        shop = uow.shops.get(SHOP)
        uow.shops.save(replace(shop, token=None))
        uow.commit()
    live.install()
    replayed = live.api("POST", f"/payouts/{payout['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["state"] == "fulfilled"
    assert len(gift_cards(live)) == 1
    again = live.api("POST", f"/payouts/{payout['id']}/replay")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"


def test_a_customer_deleted_in_shopify_fails_for_good_and_release_returns_the_money(live):
    ava, customer = setup_program(live, form="store_credit")
    earn(live, ava)
    live.emulator.delete_customer(SHOP, customer["id"])
    run(live, "2026-12")
    payout = only_payout(live)
    assert payout["state"] == "failed" and payout["error_code"] == "owner_not_found"
    assert rewards(live, ava)["payable"] == "0.00"  # still reserved by the failed payout
    released = live.api("POST", f"/payouts/{payout['id']}/cancel", json={"reason": "gone"})
    assert released.status_code == 200 and released.json()["state"] == "cancelled"
    assert rewards(live, ava)["payable"] == "18.00"
    kinds = [e["kind"] for e in live.api("GET", f"/ambassadors/{ava['id']}/ledger").json()["items"]]
    assert kinds[:2] == ["payout_released", "payout"]


def test_a_currency_change_parks_the_payout_without_calling_shopify(live):
    ava, _ = setup_program(live, form="gift_card")
    earn(live, ava)
    with live.container.engine.begin() as conn:
        conn.execute(sa.update(shops).where(shops.c.domain == SHOP).values(currency="EUR"))
    calls = len(live.emulator.graphql_calls)
    run(live, "2026-12")
    payout = only_payout(live)
    assert payout["state"] == "failed" and payout["error_code"] == "currency_mismatch"
    assert gift_cards(live) == []
    assert len(live.emulator.graphql_calls) == calls


def test_a_refund_while_fulfilling_is_netted_from_the_next_payout(live):
    ava, _ = setup_program(live, form="gift_card")
    order = earn(live, ava)
    clock = FakeClock(datetime.now(UTC))  # leases and back-offs on a clock the test moves
    dying = DiesAfterShopify(live.container.rewards)
    real, live.container.rewards = live.container.rewards, dying
    with pytest.raises(Killed):
        payouts.run_payouts(live.container.uow, live.container.jobs, live.container.clock, SHOP,
                            period="2026-12")
    live.container.rewards = real
    payout = only_payout(live)
    live.emulator.cancel(SHOP, order["id"])  # the whole order reversed while fulfilling
    clock.advance(minutes=6)
    ctx = replace(live.container.fulfilment(), clock=clock)
    assert payouts.fulfil_payout(ctx, SHOP, payout["id"]) == "found"
    assert rewards(live, ava)["payable"] == "-18.00"  # owed back, netted first
    earn(live, ava, price="150.00")  # 270.00 paid → 27.00
    report = run(live, "2027-01")
    assert report["total"] == "9.00"
    assert len(gift_cards(live)) == 2
    assert sorted(c.initial_value for c in gift_cards(live)) == [Decimal("9.00"),
                                                                  Decimal("18.00")]


def test_minimum_approval_and_cash_batch_files(live):
    ava, _ = setup_program(live, form="cash", minimum="20.00")
    earn(live, ava)
    report = run(live, "2026-12")
    assert report["created"] == 0 and report["below_minimum"] == 1
    earn(live, ava)  # 36.00 payable
    report = run(live, "2027-01")
    assert report["created"] == 1
    payout = only_payout(live)
    assert payout["state"] == "awaiting_approval"
    batch_id = payout["batch_id"]
    early = live.api("GET", f"/payouts/batches/{batch_id}/export", params={"format": "paypal"})
    assert early.status_code == 409 and early.json()["error"]["code"] == "nothing_to_export"
    approved = live.api("POST", f"/payouts/batches/{batch_id}/approve")
    assert approved.status_code == 200 and approved.json()["states"] == {"approved": 1}
    paypal = live.api("GET", f"/payouts/batches/{batch_id}/export", params={"format": "paypal"})
    assert paypal.status_code == 200
    rows = list(csv.reader(io.StringIO(paypal.text)))
    assert rows == [["ava@example.com", "36.00", "USD", f"payout-{payout['id']}",
                     "Your ambassador commission. Thank you!", "PAYPAL"]]
    assert live.api("GET", f"/payouts/batches/{batch_id}/export",
                    params={"format": "paypal"}).text == paypal.text  # the same lines again
    bank = live.api("GET", f"/payouts/batches/{batch_id}/export", params={"format": "bank"})
    header, line = list(csv.reader(io.StringIO(bank.text)))
    assert header == ["payout_id", "name", "email", "amount", "currency", "reference"]
    assert line == [str(payout["id"]), "Ava Martin", "ava@example.com", "36.00", "USD",
                    f"payout-{payout['id']}"]
    assert live.api("POST", f"/payouts/batches/{batch_id}/paid").json() == {"fulfilled": 1}
    assert live.api("POST", f"/payouts/batches/{batch_id}/paid").json() == {"fulfilled": 0}
    assert stats(live, ava)["paid"] == "36.00"
    listed = live.api("GET", "/payouts/batches").json()["items"]
    batch = next(b for b in listed if b["id"] == batch_id)  # one aggregate query for the list
    assert batch["totals"] == {"cash": {"count": 1, "amount": "36.00"}}
    assert batch["states"] == {"fulfilled": 1} and batch["paid_at"] is not None
    budget = live.api("GET", "/payouts/budget").json()
    assert budget["delivered"] == {"cash": "36.00"} and budget["owed_in_payouts"] == {}


def test_points_are_kept_then_redeemed_for_store_credit(live):
    ava, _ = setup_program(live, form="points", choosable_forms=["store_credit"],
                           points_per_unit=100)
    earn(live, ava)
    assert run(live, "2026-12")["points_kept"] == 1
    view = rewards(live, ava)
    assert view["points"] == 1800 and view["payable"] == "18.00"
    too_many = live.api("POST", f"/ambassadors/{ava['id']}/redemptions",
                        json={"form": "store_credit", "points": 5000})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "insufficient_points"
    redeemed = live.api("POST", f"/ambassadors/{ava['id']}/redemptions",
                        json={"form": "store_credit", "points": 1000})
    assert redeemed.status_code == 201, redeemed.text
    assert (redeemed.json()["value"], redeemed.json()["state"]) == ("10.00", "fulfilled")
    assert rewards(live, ava)["points"] == 800


def test_merchant_approval_holds_shopify_payouts_until_approved(live):
    ava, _ = setup_program(live, form="gift_card", merchant_approval=True)
    earn(live, ava)
    run(live, "2026-12")
    payout = only_payout(live)
    assert payout["state"] == "awaiting_approval" and gift_cards(live) == []
    approved = live.api("POST", f"/payouts/{payout['id']}/approve")
    assert approved.status_code == 200 and approved.json()["state"] == "fulfilled"
    assert len(gift_cards(live)) == 1


@pytest.mark.parametrize("body, field", [
    ({"payouts": {"form": "bitcoin"}}, "payouts.form"),
    ({"payouts": {"minimum": "-1"}}, "payouts.minimum"),
    ({"payouts": {"minimum": 5.5}}, "payouts.minimum"),
    ({"payouts": {"form": "free_product"}}, "payouts.free_product_id"),
    ({"payouts": {"colour": "red"}}, "payouts.colour"),
])
def test_bad_payout_settings_are_refused_naming_the_field(live, body, field):
    live.install()
    response = live.api("PATCH", "/program/settings", json=body)
    assert response.status_code in (400, 422), response.text
    assert field in response.text


def test_unknown_payouts_and_batches_are_404_and_bad_filters_422(live):
    live.install()
    assert live.api("GET", "/payouts/999").status_code == 404
    assert live.api("POST", "/payouts/999/approve").status_code == 404
    assert live.api("GET", "/payouts/batches/999/export").status_code == 404
    assert live.api("GET", "/payouts", params={"state": "lost"}).status_code == 422
    assert live.api("GET", "/ambassadors/999/rewards").status_code == 404

