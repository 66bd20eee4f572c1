"""Ports: the small abstract interfaces the core needs from the outside world.

Adapters implement them (``SqlAlchemyUnitOfWork``, ``ShopifyAdminPlatform``, ``RqJobQueue``...);
tests plug in fakes (``FakeX``) through :func:`adapters.bootstrap.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, Self

from connector.domain.shops import OfflineToken, Shop
from connector.domain.webhooks import Delivery, IncomingWebhook


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


# --- persistence -------------------------------------------------------------------------


class ShopRepository(Protocol):
    def get(self, domain: str) -> Shop | None: ...

    def get_for_update(self, domain: str) -> Shop | None:
        """Like :meth:`get`, holding a row lock until the unit of work ends.

        Serialises token refreshes: one refresher per shop at a time.
        """
        ...

    def save(self, shop: Shop) -> Shop:
        """Insert or update by domain; returns the shop with its id."""
        ...

    def delete(self, domain: str) -> bool:
        """Delete the shop and, by cascade, every row that belongs to it."""
        ...

    def expiring_tokens(self, before: datetime) -> list[str]:
        """Domains of installed shops whose access token expires before ``before``."""
        ...


@dataclass(frozen=True)
class InboxStats:
    pending: int
    processing: int
    failed: int
    oldest_pending_at: datetime | None
    last_received_at: datetime | None


class InboxRepository(Protocol):
    def add(self, webhook: IncomingWebhook, received_at: datetime) -> int | None:
        """Store a delivery. Idempotent on ``(topic, webhook_id)``: a repeat returns ``None``."""
        ...

    def claim(self, limit: int, now: datetime, lease: timedelta) -> list[Delivery]:
        """Claim up to ``limit`` pending (or lease-expired) deliveries, oldest first.

        Safe with many workers at once: a row is claimed by one worker (``SKIP LOCKED``).
        """
        ...

    def complete(
        self,
        delivery_id: int,
        status: str,
        now: datetime,
        *,
        customer_id: int | None = None,
        order_id: int | None = None,
        note: str | None = None,
    ) -> None: ...

    def fail(
        self, delivery_id: int, error: str, now: datetime, *, retry_at: datetime | None
    ) -> None:
        """Record a failed attempt: retried from ``retry_at``, or parked as failed if None."""
        ...

    def has_claimable(self, now: datetime) -> bool: ...

    def stats(self, now: datetime, shop_domain: str | None = None) -> InboxStats: ...

    def for_customer(
        self, shop_domain: str, customer_id: int | None, order_ids: list[int]
    ) -> list[dict[str, Any]]:
        """Stored deliveries that concern a customer (by customer id or order id)."""
        ...

    def redact_customer(
        self,
        shop_domain: str,
        customer_id: int | None,
        order_ids: list[int],
        also_ids: list[int] | None = None,
    ) -> int:
        """Blank the stored bodies that concern a customer (and rows ``also_ids``)."""
        ...

    def delete_shop(self, shop_domain: str, keep_id: int | None = None) -> int: ...


@dataclass(frozen=True)
class OAuthState:
    state: str
    shop_domain: str
    purpose: str
    expires_at: datetime
    secret: str | None = None  # e.g. a PKCE verifier, stored encrypted


class OAuthStateRepository(Protocol):
    def add(self, state: OAuthState) -> None: ...

    def consume(self, state: str, now: datetime) -> OAuthState | None:
        """Return and delete the state if it exists and has not expired (single use)."""
        ...


@dataclass(frozen=True)
class PrivacyRequest:
    id: int | None
    shop_domain: str
    topic: str
    received_at: datetime
    completed_at: datetime | None
    customer_id: int | None
    summary: Mapping[str, Any]


class PrivacyRequestRepository(Protocol):
    def add(self, request: PrivacyRequest) -> int: ...

    def list(self, shop_domain: str) -> list[PrivacyRequest]: ...

    def get(self, shop_domain: str, request_id: int) -> PrivacyRequest | None: ...

    def delete_for(self, shop_domain: str, customer_id: int | None = None) -> int:
        """Delete stored exports of a shop (or of one of its customers)."""
        ...


class UnitOfWork(Protocol):
    """One database transaction. Rolls back unless :meth:`commit` is called.

    Callbacks registered with :meth:`after_commit` run only once the commit succeeded (jobs are
    enqueued there, so a worker never sees a row that is not yet visible).
    """

    @property
    def shops(self) -> ShopRepository: ...

    @property
    def inbox(self) -> InboxRepository: ...

    @property
    def oauth_states(self) -> OAuthStateRepository: ...

    @property
    def privacy_requests(self) -> PrivacyRequestRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


# --- remote platforms ---------------------------------------------------------------------


class PlatformError(Exception):
    """A remote platform call failed. ``retryable`` says whether trying again can help."""

    retryable = False


class PlatformUnauthorized(PlatformError):
    """The credentials were refused (revoked, uninstalled, invalid grant)."""


class PlatformRetryable(PlatformError):
    """Throttled, timed out, or a 5xx: try again later."""

    retryable = True


@dataclass(frozen=True)
class ShopInfo:
    name: str
    email: str | None
    currency: str


class CommercePlatform(Protocol):
    """The store platform (Shopify) as the core needs it."""

    def exchange_id_token(self, shop_domain: str, id_token: str) -> OfflineToken:
        """Token exchange of a verified id (session) token for an expiring offline token."""
        ...

    def exchange_authorization_code(self, shop_domain: str, code: str) -> OfflineToken: ...

    def refresh(self, shop_domain: str, refresh_token: str) -> OfflineToken:
        """Refresh grant. The refresh token is single-use: the result carries its successor."""
        ...

    def shop_info(self, shop_domain: str, access_token: str) -> ShopInfo: ...

    def register_webhooks(
        self, shop_domain: str, access_token: str, topics: list[str], uri: str
    ) -> list[str]:
        """Subscribe ``uri`` to ``topics``; idempotent. Returns the topics now subscribed."""
        ...


# --- background jobs ---------------------------------------------------------------------


class Job(StrEnum):
    """Background jobs, by stable name. The adapter maps each to its function and queue."""

    PROCESS_INBOX = "process_inbox"
    SWEEP_INBOX = "sweep_inbox"
    REGISTER_WEBHOOKS = "register_webhooks"
    REFRESH_TOKENS = "refresh_tokens"


class JobQueue(Protocol):
    def enqueue(self, job: Job, *args: Any, job_id: str | None = None) -> None:
        """Queue ``job(*args)``. With ``job_id``, a job already queued under that id is kept."""
        ...

    def trigger(self, job: Job) -> None:
        """Ensure a run of ``job`` *starts* after this call; concurrent triggers coalesce.

        Cheap enough for every webhook. The job calls :meth:`acknowledge` first thing, so a
        trigger after that point queues a new run and none is lost.
        """
        ...

    def acknowledge(self, job: Job) -> None: ...


class IdGenerator(Protocol):
    def token(self, nbytes: int = 32) -> str:
        """A URL-safe random string from a CSPRNG."""
        ...
