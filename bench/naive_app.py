"""The naive webhook receiver: the baseline that ``bench/webhook_intake.py`` runs next to ours.

What one ``POST /webhooks/shopify`` does here, all before the answer:

1. verify ``X-Shopify-Hmac-Sha256`` (stdlib ``hmac``, constant-time compare);
2. parse the JSON body;
3. open a new PostgreSQL connection (no pool);
4. insert the delivery, read it back, parse it again and process it the way a worker would
   (for this benchmark: extract the customer and order ids) and update the row to
   ``processed``; commit once;
5. close the connection and answer 200 ``{"status": "accepted"}``.

Why this is the naive design: it is what a first implementation typically looks like. One
request is the whole job, so Shopify's delivery waits for the processing (a slow handler
becomes a timeout and a retry), every request pays for a new database connection (TCP,
authentication, a new server backend), and nothing is idempotent (a retried delivery is
processed again). It is kept honest: the same durable commit (PostgreSQL with
``synchronous_commit`` as configured), the same body, the same gunicorn settings, and nothing
deliberately slow; its "processing" is much lighter than the real handlers.

Served by gunicorn as ``bench.naive_app:create_app()`` with ``DATABASE_URL`` and
``SHOPIFY_API_SECRET`` in the environment. The bench creates :data:`SCHEMA` first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import psycopg
from flask import Flask, jsonify, request

TABLE = "naive_webhooks"

#: The naive inbox, created by the benchmark in its own database.
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    topic text NOT NULL,
    webhook_id text NOT NULL,
    shop_domain text NOT NULL,
    body text NOT NULL,
    status text NOT NULL DEFAULT 'received',
    customer_id bigint,
    order_id bigint,
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz
)
"""


def _libpq_url(url: str) -> str:
    """``postgresql+psycopg://`` (SQLAlchemy's spelling) to the plain URL libpq accepts."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_app() -> Flask:
    database_url = _libpq_url(os.environ["DATABASE_URL"])
    secret = os.environ["SHOPIFY_API_SECRET"].encode()
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Any:
        with psycopg.connect(database_url) as conn:
            conn.execute("SELECT 1")
        return jsonify({"status": "ok"})

    @app.post("/webhooks/shopify")
    def receive() -> Any:
        body = request.get_data()
        expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, request.headers.get("X-Shopify-Hmac-Sha256", "")):
            return jsonify({"error": "invalid_hmac"}), 401
        payload = json.loads(body)
        with psycopg.connect(database_url) as conn:  # a new connection per request: no pool
            delivery_id = conn.execute(
                f"INSERT INTO {TABLE} (topic, webhook_id, shop_domain, body)"
                " VALUES (%s, %s, %s, %s) RETURNING id",
                (
                    request.headers.get("X-Shopify-Topic", ""),
                    request.headers.get("X-Shopify-Webhook-Id", ""),
                    request.headers.get("X-Shopify-Shop-Domain", ""),
                    body.decode("utf-8"),
                ),
            ).fetchone()[0]
            # The worker's job, inline: read the delivery back, parse it, process it.
            (stored,) = conn.execute(
                f"SELECT body FROM {TABLE} WHERE id = %s", (delivery_id,)
            ).fetchone()
            order = json.loads(stored)
            customer_id = (order.get("customer") or {}).get("id")
            conn.execute(
                f"UPDATE {TABLE} SET status = 'processed', customer_id = %s,"
                " order_id = %s, processed_at = now() WHERE id = %s",
                (customer_id, payload.get("id"), delivery_id),
            )
            # Leaving the ``with`` block commits and closes the connection.
        return jsonify({"status": "accepted"})

    return app
