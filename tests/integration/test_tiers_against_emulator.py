"""Tiers from real results: promotion, the rate of later orders, what-if, demotion with grace."""

from __future__ import annotations

from datetime import timedelta

from adapters.clock import FakeClock
from connector.services.tiers import evaluate_tiers
from tests.conftest import SHOP


def setup_tiers(live):
    micro = live.api("POST", "/tiers", json={"name": "Micro", "position": 0,
                                              "commission_rate": "10"}).json()
    macro = live.api("POST", "/tiers", json={"name": "Macro", "position": 1,
                                              "commission_rate": "15", "min_revenue": "300",
                                              "perks": ["early access"]}).json()
    return micro, macro


_buyers = iter(range(10_000))


def buy(live, code):  # a new friend each time: the code is once per customer
    return live.emulator.checkout(SHOP, customer_email=f"friend{next(_buyers)}@example.com",
                                  discount_codes=[code],
                                  line_items=[{"title": "Shell", "price": "110.00",
                                               "quantity": 2}])


def test_results_promote_later_orders_earn_the_new_rate_and_grace_precedes_demotion(live):
    live.install()
    setup_tiers(live)
    a = live.api("POST", "/ambassadors", json={"email": "ava@example.com", "first_name": "Ava",
                                                "last_name": "Martin"}).json()
    assert a["tier"]["name"] == "Micro"
    first = buy(live, "AVAM")  # 198.00 credited at 10 %
    preview = live.api("POST", "/tiers/preview", json={"tiers": [
        {"name": "Micro", "position": 0, "commission_rate": "10"},
        {"name": "Macro", "position": 1, "commission_rate": "15", "min_revenue": "150"}]}).json()
    assert preview["up"] == 1 and preview["moves"][0]["ambassador_id"] == a["id"]
    c = live.container
    assert evaluate_tiers(c.uow, c.clock, SHOP).promoted == 0  # 198 < 300
    buy(live, "AVAM")  # 396.00 in the window now
    assert evaluate_tiers(c.uow, c.clock, SHOP).promoted == 1
    now = live.api("GET", f"/ambassadors/{a['id']}").json()
    assert now["tier"]["name"] == "Macro"
    third = buy(live, "avam")
    assert live.api("GET", f"/orders/{third['id']}/attribution").json()["rate"] == "15.0000"
    assert live.api("GET", f"/orders/{first['id']}/attribution").json()["rate"] == "10.0000"

    later = FakeClock(c.clock.now() + timedelta(days=120))  # results leave the 90-day window
    report = evaluate_tiers(c.uow, later, SHOP)
    assert report.in_grace == 1 and report.demoted == 0
    assert live.api("GET", f"/ambassadors/{a['id']}").json()["tier"]["name"] == "Macro"
    later.advance(days=31)
    assert evaluate_tiers(c.uow, later, SHOP).demoted == 1
    assert live.api("GET", f"/ambassadors/{a['id']}").json()["tier"]["name"] == "Micro"
    kinds = [(h["before"], h["after"]) for h in live.api(
        "GET", f"/ambassadors/{a['id']}/history").json()["items"] if h["kind"] == "tier"]
    assert kinds == [("Micro", "Macro"), ("Macro", "Micro")]


def test_a_manual_tier_is_never_changed_by_evaluation(live):
    live.install()
    _micro, macro = setup_tiers(live)
    a = live.api("POST", "/ambassadors", json={"email": "leo@example.com", "first_name": "Leo",
                                                "last_name": "Silva"}).json()
    set_ = live.api("POST", f"/ambassadors/{a['id']}/tier",
                    json={"tier_id": macro["id"], "reason": "brand partner"})
    assert set_.status_code == 200 and set_.json()["tier_locked"] is True
    c = live.container
    later = FakeClock(c.clock.now() + timedelta(days=400))
    evaluate_tiers(c.uow, later, SHOP)
    assert live.api("GET", f"/ambassadors/{a['id']}").json()["tier"]["name"] == "Macro"


def test_bad_tiers_are_refused(live):
    live.install()
    setup_tiers(live)
    for body, code in (({"name": "Micro", "position": 5, "commission_rate": "5"},
                        "duplicate_tier"),
                       ({"name": "Top", "position": 1, "commission_rate": "5"},
                        "duplicate_position"),
                       ({"name": "Top", "position": 2, "commission_rate": 5.5}, "invalid_tier"),
                       ({"name": "Top", "position": 2, "commission_rate": "150"},
                        "invalid_tier")):
        response = live.api("POST", "/tiers", json=body)
        assert 400 <= response.status_code < 500 and response.json()["error"]["code"] == code
