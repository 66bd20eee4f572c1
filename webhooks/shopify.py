"""``POST /webhooks/shopify``: every topic, one endpoint.

Order of checks, cheapest and safest first: size, signature over the raw bytes (constant time),
headers, JSON. Only a verified, well-formed delivery is stored, and it is stored before the 200:
Shopify may retry what we fail to acknowledge, never what we acknowledged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from adapters.db.engine import DatabaseUnavailable
from connector.domain.shops import InvalidShopDomain, normalise_shop_domain
from connector.domain.webhooks import KNOWN_TOPICS, IncomingWebhook
from connector.services.intake import accept_webhook

log = logging.getLogger(__name__)

bp = Blueprint("shopify_webhooks", __name__)


def _error(status: int, code: str, message: str, **headers: str) -> Any:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers.update(headers)
    return response


@bp.post("/webhooks/shopify")
def receive() -> Any:
    c = current_app.extensions["ambassador"]
    limit = c.settings.webhook_max_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, "payload_too_large", f"webhook bodies are limited to {limit} bytes")
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _error(413, "payload_too_large", f"webhook bodies are limited to {limit} bytes")
    verified = c.verifier.webhook(request.headers, body)
    if not verified.ok:
        log.warning("shopify.webhook.unverified", extra={"code": verified.code})
        return _error(401, "invalid_hmac", "missing or invalid X-Shopify-Hmac-Sha256")

    topic = request.headers.get("X-Shopify-Topic", "").strip()
    webhook_id = request.headers.get("X-Shopify-Webhook-Id", "").strip()
    if not topic or not webhook_id:
        return _error(
            400, "missing_header", "X-Shopify-Topic and X-Shopify-Webhook-Id are required"
        )
    try:
        shop = normalise_shop_domain(request.headers.get("X-Shopify-Shop-Domain"))
    except InvalidShopDomain:
        return _error(400, "invalid_shop", "X-Shopify-Shop-Domain is not a myshopify.com domain")
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except ValueError:  # UnicodeDecodeError is one too
        return _error(400, "invalid_json", "the body is not UTF-8 JSON")
    if not isinstance(payload, dict):
        return _error(400, "invalid_json", "the body is not a JSON object")
    if topic not in KNOWN_TOPICS:
        log.info("shopify.webhook.unknown_topic", extra={"topic": topic, "shop": shop})
        return jsonify({"status": "ignored", "reason": "topic not handled"}), 200

    hook = IncomingWebhook(
        topic=topic,
        webhook_id=webhook_id[:128],
        shop_domain=shop,
        body=text,
        api_version=request.headers.get("X-Shopify-API-Version"),
        event_id=request.headers.get("X-Shopify-Event-Id"),
        triggered_at=request.headers.get("X-Shopify-Triggered-At"),
    )
    try:
        accepted = accept_webhook(c.uow(), c.jobs, c.clock, hook)
    except DatabaseUnavailable:
        log.error("shopify.webhook.database_unavailable", extra={"topic": topic, "shop": shop})
        return _error(
            503, "unavailable", "storage unavailable, retry later", **{"Retry-After": "5"}
        )
    return jsonify({"status": "duplicate" if accepted.duplicate else "accepted"}), 200
