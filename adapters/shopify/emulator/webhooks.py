"""Webhook deliveries signed exactly as Shopify signs them.

The body is compact JSON (UTF-8); ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of those
exact bytes with the app's client secret. Other headers: ``X-Shopify-Topic``,
``X-Shopify-Shop-Domain``, ``X-Shopify-Webhook-Id`` (a uuid4, kept across retries of the same
delivery), ``X-Shopify-Event-Id`` (shared by every topic of one merchant action),
``X-Shopify-API-Version``, ``X-Shopify-Triggered-At`` and ``Content-Type: application/json``.
A delivery succeeds on any 2xx within the timeout (5 s, 1 s to connect, like Shopify).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

log = logging.getLogger(__name__)

#: Topics Shopify knows by a name that is not "first word / rest" of the GraphQL enum.
_TOPIC_NAMES = {
    "APP_UNINSTALLED": "app/uninstalled",
    "APP_SCOPES_UPDATE": "app/scopes_update",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
    "CUSTOMERS_DATA_REQUEST": "customers/data_request",
    "CUSTOMERS_REDACT": "customers/redact",
    "SHOP_REDACT": "shop/redact",
    "ORDERS_PARTIALLY_FULFILLED": "orders/partially_fulfilled",
    "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE": "customers_email_marketing_consent/update",
    "CUSTOMERS_MARKETING_CONSENT_UPDATE": "customers_marketing_consent/update",
    "CUSTOMER_PAYMENT_METHODS_CREATE": "customer_payment_methods/create",
    "CUSTOMER_PAYMENT_METHODS_UPDATE": "customer_payment_methods/update",
    "CUSTOMER_PAYMENT_METHODS_REVOKE": "customer_payment_methods/revoke",
    "DISCOUNTS_REDEEMCODE_ADDED": "discounts/redeemcode_added",
    "DISCOUNTS_REDEEMCODE_REMOVED": "discounts/redeemcode_removed",
}


def topic_from_enum(value: str) -> str:
    """``ORDERS_CREATE`` → ``orders/create``."""
    if value in _TOPIC_NAMES:
        return _TOPIC_NAMES[value]
    head, _, tail = value.lower().partition("_")
    return f"{head}/{tail}" if tail else head


def topic_to_enum(topic: str) -> str:
    """``orders/create`` → ``ORDERS_CREATE``."""
    return topic.replace("/", "_").upper()


WebhookMode = Literal["sync", "background", "manual"]


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of HMAC-SHA256(secret, raw body)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def triggered_at(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


@dataclass
class Delivery:
    """One signed request to one endpoint; retries reuse it with ``attempt`` + 1."""

    shop: str
    topic: str
    url: str
    body: bytes
    headers: dict[str, str]
    webhook_id: str
    event_id: str
    attempt: int = 1


class WebhookDispatcher:
    """Signs, sends (or queues), records and retries deliveries. Thread-safe.

    ``mode="sync"`` posts at once, in the caller's thread; ``"background"`` posts from one
    worker thread, in order, like Shopify, after the triggering call has returned (see
    :meth:`wait`); ``"manual"`` queues in ``pending`` until :meth:`flush`. Every attempt is
    appended to ``deliveries`` as ``{shop, topic, webhook_id, event_id, url, status, ok, error,
    attempt, at, body, headers}`` (``status`` None when nothing answered).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        mode: WebhookMode = "sync",
    ) -> None:
        self.mode: WebhookMode = mode
        self.deliveries: list[dict[str, Any]] = []
        self.pending: list[Delivery] = []
        self._clock = clock
        # Shopify's limits for an endpoint: 1 s to connect, 5 s in all.
        self._timeout = httpx.Timeout(timeout, connect=min(1.0, timeout))
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._backlog: list[Delivery] = []
        self._busy = False
        self._wakeup = threading.Condition()
        self._worker: threading.Thread | None = None

    def prepare(
        self,
        *,
        secret: str,
        shop: str,
        topic: str,
        payload: dict[str, Any],
        targets: list[tuple[str, str]],
        event_id: str,
        fired_at: datetime,
        webhook_id: str | None = None,
    ) -> list[Delivery]:
        """Sign ``payload`` once and address it to every ``(url, api_version)`` target, each
        with its own webhook id (``webhook_id`` for the first one, when given)."""
        body = encode_body(payload)
        signature = sign(secret, body)
        deliveries = []
        for index, (url, version) in enumerate(targets):
            delivery_id = webhook_id if webhook_id and index == 0 else str(uuid.uuid4())
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Shop-Domain": shop,
                "X-Shopify-Webhook-Id": delivery_id,
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-API-Version": version,
                "X-Shopify-Triggered-At": triggered_at(fired_at),
                "User-Agent": "Shopify-Captain-Hook",
            }
            deliveries.append(Delivery(shop, topic, url, body, headers, delivery_id, event_id))
        return deliveries

    def dispatch(self, deliveries: list[Delivery]) -> dict[str, Any]:
        """Send (or queue) ``deliveries``; ``{"status", "webhook_id", "deliveries"}`` of them."""
        records: list[dict[str, Any]] = []
        if self.mode == "manual":
            with self._lock:
                self.pending.extend(deliveries)
        elif self.mode == "background":
            with self._wakeup:
                self._backlog.extend(deliveries)
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._work, name="shopify-emulator:webhooks", daemon=True
                    )
                    self._worker.start()
                self._wakeup.notify_all()
        else:
            records = [self._post(delivery) for delivery in deliveries]
        return {
            "status": records[0]["status"] if records else None,
            "webhook_id": deliveries[0].webhook_id if deliveries else None,
            "deliveries": records,
        }

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until background deliveries are done; False if ``timeout`` passed first."""
        with self._wakeup:
            return self._wakeup.wait_for(lambda: not self._backlog and not self._busy, timeout)

    def _work(self) -> None:
        while True:
            with self._wakeup:
                self._wakeup.wait_for(lambda: bool(self._backlog))
                delivery = self._backlog.pop(0)
                self._busy = True
            try:
                self._post(delivery)
            finally:
                with self._wakeup:
                    self._busy = False
                    self._wakeup.notify_all()

    def flush(self, order: Literal["fifo", "lifo"] = "fifo") -> list[dict[str, Any]]:
        with self._lock:
            pending, self.pending = self.pending, []
        if order == "lifo":
            pending.reverse()
        return [self._post(delivery) for delivery in pending]

    def redeliver_failed(self) -> list[dict[str, Any]]:
        """Retry every delivery whose latest attempt failed: same body, same webhook id."""
        with self._lock:
            latest: dict[tuple[str, str], dict[str, Any]] = {}
            for record in self.deliveries:
                latest[(record["webhook_id"], record["url"])] = record
            retry = [
                Delivery(
                    shop=r["shop"],
                    topic=r["topic"],
                    url=r["url"],
                    body=r["body"],
                    headers=dict(r["headers"]),
                    webhook_id=r["webhook_id"],
                    event_id=r["event_id"],
                    attempt=r["attempt"] + 1,
                )
                for r in latest.values()
                if not r["ok"]
            ]
        return [self._post(delivery) for delivery in retry]

    def _post(self, delivery: Delivery) -> dict[str, Any]:
        status: int | None = None
        error: str | None = None
        try:
            response = self._http().post(
                delivery.url, content=delivery.body, headers=delivery.headers
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.info("shopify_emulator.webhook.failed", extra={"url": delivery.url, "error": error})
        record = {
            "shop": delivery.shop,
            "topic": delivery.topic,
            "webhook_id": delivery.webhook_id,
            "event_id": delivery.event_id,
            "url": delivery.url,
            "status": status,
            "ok": status is not None and 200 <= status < 300,
            "error": error,
            "attempt": delivery.attempt,
            "at": self._clock(),
            "body": delivery.body,
            "headers": delivery.headers,
        }
        with self._lock:
            self.deliveries.append(record)
        return record

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self._timeout, transport=self._transport, follow_redirects=False
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
