"""The dashboard's figures (``/api/v1/analytics/...``) and the system health
(``/api/v1/health/system``) against the app, PostgreSQL and the Shopify emulator: an order
with an ambassador's code shows up in today's figures, the tier chart and the top list; a
cancelled one leaves them; bad parameters are a 422 with a JSON error."""

from __future__ import annotations

from datetime import UTC, datetime


def enrol_and_order(live) -> tuple[dict, dict]:
    live.install()
    made = live.api("POST", "/ambassadors", json={
        "email": "ana@example.com", "first_name": "Ana", "last_name": "Lima"})
    assert made.status_code == 201, made.text
    ambassador = made.json()
    order = live.emulator.checkout(
        live.shop, customer_email="friend@example.com",
        line_items=[{"title": "Tee", "price": "40.00", "quantity": 2}],
        discount_codes=[ambassador["code"]])
    return ambassador, order


def test_a_credited_order_shows_in_today_the_tiers_and_the_top_list(live):
    ambassador, _ = enrol_and_order(live)
    series = live.api("GET", "/analytics/timeseries", params={"days": 7}).json()
    assert series["days"] == 7 and len(series["series"]) == 7
    today = datetime.now(UTC).date().isoformat()
    assert series["series"][-1]["date"] == today
    assert series["series"][-1]["orders"] == 1
    assert series["totals"]["orders"] == 1
    revenue = series["totals"]["revenue"]
    assert revenue == series["series"][-1]["revenue"] and float(revenue) > 0
    assert all(d["orders"] == 0 and d["revenue"] == "0.00" for d in series["series"][:-1])

    program = live.api("GET", "/analytics/program").json()
    assert program["statuses"]["active"] == 1
    assert program["tiers"] == [{"tier_id": None, "name": "No tier", "ambassadors": 1}]
    assert [a["id"] for a in program["top"]] == [ambassador["id"]]
    assert program["top"][0]["revenue"] == revenue and program["top"][0]["orders"] == 1


def test_a_cancelled_order_leaves_the_figures(live):
    _, order = enrol_and_order(live)
    live.emulator.cancel(live.shop, order["id"])
    series = live.api("GET", "/analytics/timeseries").json()
    assert series["totals"] == {"orders": 0, "revenue": "0.00"}
    assert live.api("GET", "/analytics/program").json()["top"] == []


def test_bad_parameters_are_422_with_a_json_error(live):
    live.install()
    for path, params in [("/analytics/timeseries", {"days": "0"}),
                         ("/analytics/timeseries", {"days": "367"}),
                         ("/analytics/timeseries", {"days": "ten"}),
                         ("/analytics/timeseries", {"days": "²"}),  # isdigit, not int
                         ("/analytics/program", {"limit": "-1"})]:
        response = live.api("GET", path, params=params)
        assert response.status_code == 422, (path, params)
        assert response.json()["error"]["code"] == "invalid_parameter"


def test_system_health_shows_the_inbox_and_the_job_runner(live):
    live.install()
    health = live.api("GET", "/health/system").json()
    assert health["inbox"]["failed"] == 0
    assert health["failed_deliveries"] == []
    assert health["jobs"] == {"mode": "in-process", "queues": []}


def park(container, domain: str, webhook_id: str) -> int:
    import json

    from connector.domain.webhooks import IncomingWebhook

    now = container.clock.now()
    with container.uow() as uow:
        delivery_id = uow.inbox.add(IncomingWebhook(
            "products/update", webhook_id, domain, json.dumps({"id": 1}), "2026-07", None, None),
            now)
        uow.inbox.fail(delivery_id, "RuntimeError: boom", now, retry_at=None)
        uow.commit()
    return delivery_id


def delivery_status(container, delivery_id: int) -> str:
    with container.engine.connect() as conn:
        return conn.exec_driver_sql(
            f"SELECT status FROM webhook_deliveries WHERE id = {int(delivery_id)}").scalar_one()


def test_a_parked_delivery_is_listed_and_replayed_once(client, container):
    from tests.conftest import SHOP, install_shop
    from tests.tokens import session_token

    install_shop(container)
    delivery_id = park(container, SHOP, "parked-1")
    headers = {"Authorization": f"Bearer {session_token(SHOP)}"}
    health = client.get("/api/v1/health/system", headers=headers).get_json()
    assert health["inbox"]["failed"] == 1
    assert [(d["id"], d["last_error"]) for d in health["failed_deliveries"]] == [
        (delivery_id, "RuntimeError: boom")]

    replayed = client.post(f"/api/v1/health/deliveries/{delivery_id}/replay", headers=headers)
    assert replayed.status_code == 200 and replayed.get_json()["replayed"] is True
    # Back in line and applied by the inbox job (inline here): an unknown topic is skipped.
    assert delivery_status(container, delivery_id) in ("pending", "processed", "skipped")
    again = client.post(f"/api/v1/health/deliveries/{delivery_id}/replay", headers=headers)
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/health/system", headers=headers).get_json()["inbox"]["failed"] == 0


def test_ledger_ids_beyond_bigint_or_not_ascii_digits_are_refused_not_crashed(live):
    live.install()
    for raw in ("9223372036854775808", "²"):
        response = live.api("GET", f"/ambassadors/{raw}/ledger")
        assert response.status_code == 404, (raw, response.status_code)
        assert response.json()["error"]["code"] == "not_found"


def test_ids_in_paths_and_bodies_that_are_not_bigints_are_4xx_not_crashes(live):
    live.install()
    for path in ("/applications/²", "/orders/²/attribution",
                 "/orders/9999999999999999999/attribution",
                 "/orders/gid://shopify/Order/9999999999999999999/attribution"):
        response = live.api("GET", path)
        assert response.status_code == 404, (path, response.status_code)
    for customer in ("gid://shopify/Customer/9999999999999999999", "²"):
        response = live.api("POST", "/ambassadors", json={"customer_id": customer})
        assert response.status_code == 422, (customer, response.status_code, response.text)
