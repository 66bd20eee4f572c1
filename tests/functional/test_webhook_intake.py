"""POST /webhooks/shopify, signed the way Shopify signs, against real PostgreSQL."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from tests.conftest import (
    OLD_SECRET,
    SHOP,
    count_rows,
    fixture_json,
    webhook_headers,
)

ORDER = fixture_json("order_with_discount_code_TENOFF.json")["order"]


def post(client, topic, payload=None, *, body=None, **kwargs):
    raw = body if body is not None else json.dumps(payload or ORDER, separators=(",", ":")).encode()
    headers = webhook_headers(topic, raw, **kwargs)
    return client.post("/webhooks/shopify", data=raw, headers=headers), headers


def deliveries(container):
    with container.engine.connect() as conn:
        return conn.exec_driver_sql(
            "SELECT topic, webhook_id, status, body, attempts FROM webhook_deliveries ORDER BY id"
        ).all()


def test_signed_webhook_is_stored_once_with_its_raw_body_and_processed(client, container):
    raw = json.dumps(ORDER, indent=1).encode()  # not compact: the bytes must be kept as sent
    response, _ = post(client, "orders/create", body=raw)
    assert response.status_code == 200
    assert response.get_json() == {"status": "accepted"}
    rows = deliveries(container)
    assert len(rows) == 1
    assert rows[0].body.encode() == raw
    assert rows[0].status == "processed"
    with container.engine.connect() as conn:
        note = conn.exec_driver_sql("SELECT note FROM webhook_deliveries").scalar_one()
    assert note == "ignored: unknown shop"  # the order handler ran (no shop installed here)


def test_known_vector_from_shopify_fixtures_verifies(client, container):
    vectors = fixture_json("webhook_hmac_vectors.json")
    vector = next(v for v in vectors["vectors"] if v["name"] == "unicode_body")
    body = vector["body_utf8"].encode()
    headers = webhook_headers("customers/update", body)
    headers["X-Shopify-Hmac-Sha256"] = vector["x_shopify_hmac_sha256"]
    response = client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 200
    assert count_rows(container, "webhook_deliveries") == 1


@pytest.mark.parametrize("mutate", ["missing", "wrong", "other_secret", "tampered_body"])
def test_bad_or_missing_hmac_is_401_and_nothing_is_stored(client, container, mutate):
    raw = json.dumps(ORDER).encode()
    headers = webhook_headers("orders/create", raw)
    if mutate == "missing":
        del headers["X-Shopify-Hmac-Sha256"]
    elif mutate == "wrong":
        headers["X-Shopify-Hmac-Sha256"] = "AAAA" + headers["X-Shopify-Hmac-Sha256"][4:]
    elif mutate == "other_secret":
        headers = webhook_headers("orders/create", raw, secret="not-our-secret")
    else:
        raw = raw.replace(b"450789469", b"450789470")
    response = client.post("/webhooks/shopify", data=raw, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_hmac"
    assert count_rows(container, "webhook_deliveries") == 0


def test_previous_secret_is_accepted_during_rotation(client, container):
    response, _ = post(client, "orders/create", secret=OLD_SECRET)
    assert response.status_code == 200
    assert count_rows(container, "webhook_deliveries") == 1


def test_duplicate_delivery_is_acknowledged_but_not_reapplied(client, container):
    webhook_id = str(uuid.uuid4())
    first, _ = post(client, "app/uninstalled", {"domain": SHOP}, webhook_id=webhook_id)
    second, _ = post(client, "app/uninstalled", {"domain": SHOP}, webhook_id=webhook_id)
    assert first.get_json()["status"] == "accepted"
    assert second.status_code == 200 and second.get_json()["status"] == "duplicate"
    rows = deliveries(container)
    assert len(rows) == 1 and rows[0].attempts == 1


def test_same_webhook_id_under_another_topic_is_a_different_delivery(client, container):
    webhook_id = str(uuid.uuid4())
    post(client, "orders/create", webhook_id=webhook_id)
    post(client, "orders/paid", webhook_id=webhook_id)
    assert count_rows(container, "webhook_deliveries") == 2


def test_oversized_body_is_413_and_nothing_is_stored(client, container):
    limit = container.settings.webhook_max_bytes
    raw = json.dumps({"pad": "x" * (limit + 10)}).encode()
    response, _ = post(client, "orders/create", body=raw)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
    assert count_rows(container, "webhook_deliveries") == 0


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe{}", b""])
def test_non_json_body_is_4xx_and_nothing_is_stored(client, container, raw):
    response, _ = post(client, "orders/create", body=raw)
    assert 400 <= response.status_code < 500
    assert "error" in response.get_json()
    assert count_rows(container, "webhook_deliveries") == 0


def test_unknown_topic_is_acknowledged_and_not_stored(client, container, caplog):
    caplog.set_level("INFO")
    response, _ = post(client, "products/update", {"id": 1})
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert count_rows(container, "webhook_deliveries") == 0
    assert any(r.getMessage() == "shopify.webhook.unknown_topic" for r in caplog.records)


@pytest.mark.parametrize(
    "header,value,code",
    [
        ("X-Shopify-Shop-Domain", "evil.example.com", "invalid_shop"),
        ("X-Shopify-Topic", "", "missing_header"),
        ("X-Shopify-Webhook-Id", "", "missing_header"),
    ],
)
def test_malformed_headers_are_400(client, container, header, value, code):
    raw = json.dumps(ORDER).encode()
    headers = webhook_headers("orders/create", raw)
    headers[header] = value
    response = client.post("/webhooks/shopify", data=raw, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code
    assert count_rows(container, "webhook_deliveries") == 0


def test_get_is_405_json(client):
    response = client.get("/webhooks/shopify")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_database_down_answers_503_so_shopify_retries(tmp_path, client, container):
    # Point the app at a PostgreSQL port where nothing listens: intake must not 500.
    container.engine = sa.create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    response, _ = post(client, "orders/create")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "unavailable"
