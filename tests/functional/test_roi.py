# ruff: noqa: F811 - the fixtures are shared with test_engagement (imported by name)
"""Return on influence from real webhooks: attributed against store revenue, new customers,
refunds, reach, approved content, and cost (commissions net of reversals, challenge prizes) in
total, per month, per tier and per challenge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connector.domain.roi import CostEntry, RoiOrder, aggregate, months_between
from entrypoints import jobs
from tests.conftest import webhook_headers
from tests.functional.test_engagement import (  # noqa: F401
    NOW,
    api,
    c,
    client,
    clock,
    enrol,
    order,
    shop,
)


def refund(client, order_id: int, amount: str) -> None:
    body = json.dumps({
        "id": order_id + 1, "order_id": order_id, "created_at": NOW.isoformat(),
        "refund_line_items": [{"line_item_id": order_id * 10, "quantity": 1,
                               "subtotal_set": {"shop_money": {"amount": amount}}}],
    }).encode()
    response = client.post("/webhooks/shopify", data=body,
                           headers=webhook_headers("refunds/create", body))
    assert response.status_code == 200


def test_return_on_influence_from_orders_rewards_prizes_and_content(c, client, shop):
    tier = api(client, "POST", "/tiers", {"name": "Micro", "position": 1,
                                          "commission_rate": "10"}).get_json()
    a = enrol(c, shop, "Ann", "Able", "ANN10")
    b = enrol(c, shop, "Bob", "Baker", "BOB10")
    api(client, "POST", f"/ambassadors/{a}/tier", {"tier_id": tier["id"]})
    start = NOW - timedelta(hours=6)
    cid = api(client, "POST", "/challenges", {
        "name": "Sprint", "metric": "revenue", "starts_at": (start).isoformat(),
        "ends_at": (NOW + timedelta(hours=1)).isoformat(),
        "prizes": [{"rank": 1, "amount": "25.00"}]}).get_json()["id"]
    api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": a})
    first = order(client, "ANN10", "100.00", NOW - timedelta(hours=2), customer=1)
    order(client, "ANN10", "50.00", NOW - timedelta(hours=1), customer=1)  # returning buyer
    order(client, "BOB10", "30.00", NOW - timedelta(hours=2), customer=2)
    order(client, "NOBODY", "220.00", NOW - timedelta(hours=2), customer=3)  # not attributed
    refund(client, first, "40.00")
    post = api(client, "POST", "/submissions", {"ambassador_id": a, "url": "https://x.com/1",
                                                "text": "#ad"}).get_json()
    api(client, "POST", f"/submissions/{post['id']}/approve")
    c.clock.advance(hours=2)
    jobs.close_challenges()

    report = api(client, "GET", "/roi").get_json()
    month = f"{NOW:%Y-%m}"
    assert report["to"] == month and len(report["months"]) == 12
    total = report["total"]
    assert total["business"] == {
        "attributed_revenue": "140.00",  # 60 (100 less 40 refunded) + 50 + 30
        "attributed_orders": 3,
        "new_customers": 2,  # customer 1's second order is not new
        "average_order": "46.67",
        "refunded_orders": 1,
        "rewards_reversed": "4.00",
    }
    assert total["marketing"] == {
        "ambassadors_active": 2, "codes_used": 2, "store_revenue": "360.00",
        "share_of_store_revenue": "38.9",
    }
    assert total["content"] == {"approved": 1}
    # commissions 10 % of 100 + 50 + 30 = 18, less 4 reversed; prize 25
    assert total["cost"] == {"commissions": "14.00", "bonuses": "25.00", "total": "39.00"}
    assert total["return_per_unit_cost"] == "2.59"  # (140 - 39) / 39
    [this_month] = [m for m in report["months"] if m["month"] == month]
    assert this_month["business"] == total["business"]
    assert all(m["business"]["attributed_orders"] == 0
               for m in report["months"] if m["month"] != month)
    tiers = {t["tier"]: t for t in report["tiers"]}
    assert tiers["Micro"]["business"]["attributed_revenue"] == "110.00"
    assert tiers["Micro"]["cost"]["bonuses"] == "25.00"
    assert tiers["none"]["business"]["attributed_revenue"] == "30.00"
    [sprint] = report["challenges"]
    assert sprint == {**sprint, "challenge_id": cid, "prizes": "25.00", "participants": 1,
                      "participants_revenue": "110.00"}
    assert b


def test_roi_ranges_are_checked(client, shop):
    for query in ("from=2026-13", "to=December", "from=2027-01&to=2026-01",
                  "from=2020-01&to=2026-12"):
        response = api(client, "GET", f"/roi?{query}")
        assert response.status_code == 422, query
        assert response.get_json()["error"]["code"].startswith("invalid_")
    empty = api(client, "GET", "/roi?from=2025-01&to=2025-03").get_json()
    assert [m["month"] for m in empty["months"]] == ["2025-01", "2025-02", "2025-03"]
    assert empty["total"]["business"]["average_order"] is None
    assert empty["total"]["marketing"]["share_of_store_revenue"] is None


def test_months_between_crosses_years():
    assert months_between(datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC)) == [
        "2026-11", "2026-12", "2027-01", "2027-02"]


def test_aggregate_puts_each_figure_in_its_month_tier_and_challenge():
    at = datetime(2026, 12, 5, tzinfo=UTC)
    result = aggregate(
        [RoiOrder(at, Decimal(100), 1, "A10", Decimal(100), True, False, 7),
         RoiOrder(at, Decimal(50))],
        [CostEntry(at, 1, "commission", Decimal(10), 7),
         CostEntry(at, 1, "bonus", Decimal(5), 7, challenge_id=3)],
        [(at, 1, 7)],
        months=["2026-12"], currency="EUR", tier_names={7: "Gold"}, challenges={3: "Xmas"},
    )
    assert result["total"]["marketing"]["share_of_store_revenue"] == "66.7"
    assert result["tiers"][0]["tier"] == "Gold"
    assert result["tiers"][0]["content"] == {"approved": 1}
    assert result["challenges"] == [{"challenge_id": 3, "name": "Xmas", "prizes": "5.00"}]
