"""Mandatory privacy webhooks and app/uninstalled, end to end through the signed endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from connector.domain.shops import ShopStatus
from tests.conftest import SHOP, count_rows, fixture_json, install_shop, webhook_headers

ORDER = fixture_json("order_with_discount_code_TENOFF.json")["order"]
CUSTOMER_ID = ORDER["customer"]["id"]


def send(client, topic, payload, **kwargs):
    raw = json.dumps(payload).encode()
    response = client.post(
        "/webhooks/shopify", data=raw, headers=webhook_headers(topic, raw, **kwargs)
    )
    assert response.status_code == 200, response.get_json()
    return response


def install(container, domain=SHOP, installed_at=None):
    install_shop(container, domain, installed_at=installed_at)


def bodies(container):
    with container.engine.connect() as conn:
        return [
            json.loads(b)
            for b in conn.exec_driver_sql(
                "SELECT body FROM webhook_deliveries ORDER BY id"
            ).scalars()
        ]


def compliance(name, **overrides):
    payload = fixture_json(name)
    payload["shop_domain"] = SHOP
    payload.update(overrides)
    return payload


def test_data_request_produces_an_export_of_what_we_hold_on_that_customer(client, container):
    install(container)
    send(client, "orders/create", ORDER)
    other = dict(ORDER, id=999, customer={"id": 424242, "email": "someone@else.test"})
    send(client, "orders/create", other)
    request = compliance(
        "customers_data_request.json",
        customer={"id": CUSTOMER_ID, "email": ORDER["email"]},
        orders_requested=[ORDER["id"]],
    )
    send(client, "customers/data_request", request)
    with container.uow() as uow:
        exports = [
            r for r in uow.privacy_requests.list(SHOP) if r.topic == "customers/data_request"
        ]
    assert len(exports) == 1
    held = exports[0].summary["webhook_deliveries"]
    assert [h["body"]["id"] for h in held] == [ORDER["id"]]  # theirs, not the other customer's
    assert exports[0].customer_id == CUSTOMER_ID


def test_customer_redact_blanks_their_stored_bodies_and_keeps_others(client, container):
    install(container)
    send(client, "orders/create", ORDER)
    other = json.loads(json.dumps(ORDER).replace(ORDER["email"], "x@other.test"))
    send(client, "orders/create", dict(other, id=999, customer={"id": 424242}))
    send(
        client,
        "customers/data_request",
        compliance(
            "customers_data_request.json", customer={"id": CUSTOMER_ID}, orders_requested=[]
        ),
    )
    send(
        client,
        "customers/redact",
        compliance(
            "customers_redact.json", customer={"id": CUSTOMER_ID}, orders_to_redact=[ORDER["id"]]
        ),
    )
    stored = bodies(container)
    assert stored[0] == {"redacted": True}
    assert ORDER["email"] not in json.dumps(stored)
    assert stored[1]["id"] == 999  # the other customer's order is untouched
    with container.uow() as uow:
        topics = [r.topic for r in uow.privacy_requests.list(SHOP)]
    assert "customers/data_request" not in topics  # the earlier export was erased too
    assert "customers/redact" in topics


def test_shop_redact_deletes_everything_the_shop_had(client, container):
    install(container)
    install(container, domain="other-shop.myshopify.com")
    send(client, "orders/create", ORDER)
    send(client, "orders/create", ORDER, shop="other-shop.myshopify.com")
    send(client, "shop/redact", compliance("shop_redact.json"))
    with container.uow() as uow:
        assert uow.shops.get(SHOP) is None
        assert uow.shops.get("other-shop.myshopify.com") is not None  # other tenants untouched
        evidence = uow.privacy_requests.list(SHOP)
    with container.engine.connect() as conn:
        left = conn.exec_driver_sql(
            "SELECT shop_domain, topic FROM webhook_deliveries ORDER BY id"
        ).all()
    assert [tuple(r) for r in left] == [
        ("other-shop.myshopify.com", "orders/create"),
        (SHOP, "shop/redact"),
    ]
    assert [e.topic for e in evidence] == ["shop/redact"]
    assert evidence[0].summary["shop_deleted"] is True


def test_app_uninstalled_drops_the_tokens(client, container):
    install(container)
    send(client, "app/uninstalled", fixture_json("shop.json")["shop"])
    with container.uow() as uow:
        shop = uow.shops.get(SHOP)
    assert shop.status is ShopStatus.UNINSTALLED and shop.token is None
    with container.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT access_token_enc, refresh_token_enc FROM shops").one()
    assert row == (None, None)


def test_a_late_uninstall_from_before_a_reinstall_is_ignored(client, container):
    install(container, installed_at=datetime(2026, 7, 2, tzinfo=UTC))
    send(client, "app/uninstalled", {"domain": SHOP}, triggered_at="2026-07-01T10:00:00Z")
    with container.uow() as uow:
        assert uow.shops.get(SHOP).installed
    assert count_rows(container, "webhook_deliveries") == 1
