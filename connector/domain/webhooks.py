"""Webhook topics and inbox deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Topic(StrEnum):
    ORDERS_CREATE = "orders/create"
    ORDERS_PAID = "orders/paid"
    ORDERS_UPDATED = "orders/updated"
    ORDERS_CANCELLED = "orders/cancelled"
    REFUNDS_CREATE = "refunds/create"
    CUSTOMERS_UPDATE = "customers/update"
    APP_UNINSTALLED = "app/uninstalled"
    CUSTOMERS_DATA_REQUEST = "customers/data_request"
    CUSTOMERS_REDACT = "customers/redact"
    SHOP_REDACT = "shop/redact"


#: Topics the app subscribes to through the Admin API (compliance topics are declared in
#: ``shopify.app.toml`` only: Shopify does not allow subscribing to them through the API).
SUBSCRIBED_TOPICS: tuple[Topic, ...] = (
    Topic.ORDERS_CREATE,
    Topic.ORDERS_PAID,
    Topic.ORDERS_UPDATED,
    Topic.ORDERS_CANCELLED,
    Topic.REFUNDS_CREATE,
    Topic.CUSTOMERS_UPDATE,
    Topic.APP_UNINSTALLED,
)
COMPLIANCE_TOPICS: tuple[Topic, ...] = (
    Topic.CUSTOMERS_DATA_REQUEST,
    Topic.CUSTOMERS_REDACT,
    Topic.SHOP_REDACT,
)
KNOWN_TOPICS = frozenset(t.value for t in Topic)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # stored, waiting for a worker
    PROCESSING = "processing"  # claimed by a worker under a lease
    PROCESSED = "processed"  # its handler ran and committed
    SKIPPED = "skipped"  # no handler for its topic in this version (kept, acknowledged)
    FAILED = "failed"  # its handler failed too many times; shown in system health


@dataclass(frozen=True)
class IncomingWebhook:
    """A verified webhook, as received: the raw body is kept byte for byte."""

    topic: str
    webhook_id: str
    shop_domain: str
    body: str
    api_version: str | None
    event_id: str | None
    triggered_at: str | None


@dataclass(frozen=True)
class Delivery:
    """An inbox row claimed for processing."""

    id: int
    topic: str
    webhook_id: str
    shop_domain: str
    body: str
    attempts: int
    received_at: datetime
    triggered_at: datetime | None = None


#: A delivery is retried this many times before it is parked as ``failed``.
MAX_ATTEMPTS = 8
