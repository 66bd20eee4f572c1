"""Ports: the small abstract interfaces the core needs from the outside world.

Adapters implement them (``SqlAlchemyUnitOfWork``, ``ShopifyAdminPlatform``, ``RqJobQueue``...);
tests plug in fakes (``FakeX``) through :func:`adapters.bootstrap.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, Self

from connector.domain.ambassadors import Ambassador, AuditEntry
from connector.domain.applications import Application, ApplicationStatus, ApplicationVote
from connector.domain.attribution import AmbassadorIdentity, Candidate, Reason
from connector.domain.challenges import Challenge, Standing
from connector.domain.content import Resource, Submission, SubmissionStatus
from connector.domain.engagement import BandCounts, Score
from connector.domain.money import Money
from connector.domain.orders import Order, Refund
from connector.domain.payouts import PayoutState, RewardForm
from connector.domain.program import FriendDiscount, ProgramSettings
from connector.domain.roi import CostEntry, RoiOrder
from connector.domain.salesforce import (
    AmbassadorSnapshot,
    ApiUsage,
    ContactLink,
    ContactMatch,
    SalesforceConnection,
)
from connector.domain.shops import OfflineToken, Shop
from connector.domain.tiers import Results, Tier
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

    def installed_domains(self) -> list[str]: ...

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
    #: Deliveries ever stored, all shops (the id sequence's high-water mark: one index read,
    #: where a count would scan); 0 in a shop's own figures.
    stored_total: int = 0


@dataclass(frozen=True)
class Completion:
    """A delivery's outcome: its status, what it concerned (for privacy requests), a note."""

    delivery_id: int
    status: str
    customer_id: int | None = None
    order_id: int | None = None
    note: str | None = None


class InboxRepository(Protocol):
    def add(self, webhook: IncomingWebhook, received_at: datetime) -> int | None:
        """Store a delivery. Idempotent on ``(topic, webhook_id)``: a repeat returns ``None``."""
        ...

    def claim(
        self, limit: int, now: datetime, lease: timedelta, *, shared_limit: int | None = None
    ) -> list[Delivery]:
        """Claim up to ``limit`` pending (or lease-expired) deliveries, oldest first, each
        shop with work getting an equal share; at most ``shared_limit`` (if given) when more
        than one shop has work.

        Safe with many workers at once: a row is claimed by one worker (``SKIP LOCKED``).
        """
        ...

    def complete_many(self, completions: Sequence[Completion], now: datetime) -> None:
        """Record each delivery's outcome (``processed_at`` = ``now``), one round trip."""
        ...

    def fail(
        self, delivery_id: int, error: str, now: datetime, *, retry_at: datetime | None
    ) -> None:
        """Record a failed attempt: retried from ``retry_at``, or parked as failed if None."""
        ...

    def release(self, delivery_ids: Sequence[int], leased_until: datetime) -> int:
        """Make claimed deliveries claimable again at once, those still held under the lease
        that ends at ``leased_until`` (a claim whose batch never committed); returns how many.
        Rows completed meanwhile, or claimed again by another worker, are left alone."""
        ...

    def has_claimable(self, now: datetime) -> bool: ...

    def replay(self, shop_domain: str, delivery_id: int) -> bool:
        """Put a parked (failed) delivery of this shop back in line with fresh attempts; its
        last error stays until it is applied. False (nothing changed) for any other row."""
        ...

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

    @property
    def ambassadors(self) -> AmbassadorRepository: ...

    @property
    def program(self) -> ProgramRepository: ...

    @property
    def task_runs(self) -> TaskRunRepository: ...

    @property
    def applications(self) -> ApplicationRepository: ...

    @property
    def notifications(self) -> NotificationOutbox: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def reconciliation(self) -> ReconciliationRepository: ...

    @property
    def salesforce(self) -> SalesforceRepository: ...

    @property
    def payouts(self) -> PayoutRepository: ...

    @property
    def engagement(self) -> EngagementRepository: ...

    @property
    def challenges(self) -> ChallengeRepository: ...

    @property
    def content(self) -> ContentRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def after_commit(self, callback: Callable[[], None]) -> None: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested transaction: an exception inside rolls back to it (and propagates)."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


# --- remote platforms ---------------------------------------------------------------------


class PlatformError(Exception):
    """A remote platform call failed. ``retryable`` says whether trying again can help."""

    retryable = False


class PlatformUnauthorized(PlatformError):
    """The credentials were refused (revoked, uninstalled, invalid grant)."""


class CodeTaken(PlatformError):
    """Shopify already has this code (on a discount that is not ours)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"code {code} is taken in Shopify")
        self.code = code


class PlatformRetryable(PlatformError):
    """Throttled, timed out, or a 5xx: try again later."""

    retryable = True


class PlatformThrottled(PlatformRetryable):
    """The shop's rate limit needs ``retry_in`` seconds before the call can go through, longer
    than the caller agreed to wait (a job then gives its worker back and comes again)."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


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
    SYNC_CODES = "sync_codes"
    CHECK_CODE_DRIFT = "check_code_drift"
    SYNC_CUSTOMER_TAGS = "sync_customer_tags"
    ENROL_CUSTOMERS = "enrol_customers"
    SCAN_CANDIDATES = "scan_candidates"
    APPROVE_REWARDS = "approve_rewards"
    EVALUATE_TIERS = "evaluate_tiers"
    SEND_NOTIFICATIONS = "send_notifications"
    RECONCILE_ORDERS = "reconcile_orders"
    SYNC_SALESFORCE = "sync_salesforce"
    RUN_PAYOUTS = "run_payouts"
    FULFIL_PAYOUT = "fulfil_payout"
    FULFIL_DUE_PAYOUTS = "fulfil_due_payouts"
    SCORE_ENGAGEMENT = "score_engagement"
    CLOSE_CHALLENGES = "close_challenges"


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

    def failed_jobs(self, shop_domain: str, limit: int = 50) -> list[FailedJob]:
        """Jobs of this shop (first argument: its domain) that failed for good, newest first.
        Jobs of no shop (the inbox drain, the outbox) are nobody's to see here."""
        ...

    def retry_failed(self, shop_domain: str, job_id: str) -> bool | None:
        """Queue a failed job of this shop again: True when queued now, False when it was no
        longer failed (already retried: never queued twice), None when no such job is this
        shop's."""
        ...

    def enqueue_in(self, delay: float, job: Job, *args: Any) -> None:
        """Queue ``job(*args)`` to run ``delay`` seconds from now (not coalesced)."""
        ...


@dataclass(frozen=True)
class FailedJob:
    id: str
    job: str  # the Job's name, e.g. "sync_codes"
    queue: str
    failed_at: datetime | None
    error: str  # the exception's last line, secrets redacted; never a stack trace


class IdGenerator(Protocol):
    def token(self, nbytes: int = 32) -> str:
        """A URL-safe random string from a CSPRNG."""
        ...


# --- the ambassador program ---------------------------------------------------------------


# Sort keys of the ambassadors list; a leading "-" means descending. Ties are broken by the id
# in the same direction, so every order is total and keyset pages never skip or repeat a row.
AMBASSADOR_SORTS = ("created", "name", "orders", "revenue", "engagement")
ENGAGEMENT_BANDS = ("not engaged", "marginal", "engaged")


@dataclass(frozen=True)
class AmbassadorQuery:
    status: str | None = None
    tier_id: int | None = None
    text: str | None = None  # matches email, name or code
    band: str | None = None  # engagement band; unscored ambassadors count as "not engaged"
    after_id: int | None = None  # keyset cursor of the default order: ids below this one
    sort: str = "-created"  # one of AMBASSADOR_SORTS, optionally prefixed with "-"
    # Keyset cursor of any order: the last row's sort values (AmbassadorRepository.search_keyed)
    # and its id; rows strictly after it in the chosen order.
    after: tuple[tuple[Any, ...], int] | None = None
    limit: int = 50


class AmbassadorRepository(Protocol):
    def get(
        self, shop_id: int, ambassador_id: int, *, for_update: bool = False
    ) -> Ambassador | None: ...

    def by_email(self, shop_id: int, email: str) -> Ambassador | None: ...

    def names(self, shop_id: int, ambassador_ids: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        """(first name, last name, email) of these ambassadors of the shop, in one read."""
        ...

    def by_customer(self, shop_id: int, customer_id: int) -> Ambassador | None: ...

    def by_code(self, shop_id: int, code: str) -> Ambassador | None:
        """Case-insensitive (codes are stored upper-case)."""
        ...

    def add(self, ambassador: Ambassador) -> Ambassador | None:
        """Insert; ``None`` when the shop already has this email or customer (no second one)."""
        ...

    def save(self, ambassador: Ambassador) -> Ambassador:
        """Update every field and bump ``version``."""
        ...

    def reserve_code(self, shop_id: int, ambassador_id: int, code: str) -> bool:
        """Give the ambassador ``code`` (state pending) unless another ambassador of the shop
        holds it. Atomic; safe under concurrency."""
        ...

    def needing_code_sync(self, shop_id: int, limit: int) -> list[Ambassador]:
        """Ambassadors whose code state in Shopify differs from what their status wants."""
        ...

    def issued_codes(self, shop_id: int) -> list[Ambassador]:
        """Ambassadors whose code is (or was) on a Shopify discount: for the drift check."""
        ...

    def retire_code(
        self, shop_id: int, ambassador_id: int, discount_gid: str, redeem_code_gid: str
    ) -> None:
        """Queue an old code for deletion in Shopify (after a rotation)."""
        ...

    def pending_retirements(self, shop_id: int) -> list[tuple[int, str, str]]: ...

    def retirement_done(self, shop_id: int, retirement_id: int) -> None: ...

    def search(self, shop_id: int, query: AmbassadorQuery) -> list[Ambassador]: ...

    def search_keyed(
        self, shop_id: int, query: AmbassadorQuery
    ) -> list[tuple[Ambassador, tuple[Any, ...]]]:
        """As :meth:`search`, each row with its sort values (the cursor of the next page):
        name: (first_name, last_name); orders: (int,); revenue, engagement: (Decimal,);
        created: (). An ambassador with no statistics or score yet has (None,) and sorts
        below every value (last when descending, first when ascending)."""
        ...

    def count_by_status(self, shop_id: int) -> dict[str, int]: ...

    def tier_positions(self, shop_id: int) -> list[tuple[int, int | None]]:
        """(ambassador id, tier id) of everyone not removed: for the tier what-if."""
        ...

    def enrolled_customers(self, shop_id: int, customer_ids: list[int]) -> set[int]: ...

    def tags_to_sync(self, shop_id: int, limit: int) -> list[tuple[int, int, str, bool]]:
        """(id, customer id, status, tagged) of ambassadors whose customer tag is out of date."""
        ...

    def mark_tagged(self, shop_id: int, ambassador_id: int, tagged: bool) -> None: ...

    def audit(self, shop_id: int, entry: AuditEntry) -> None: ...

    def history(self, shop_id: int, ambassador_id: int) -> list[AuditEntry]: ...


class ProgramRepository(Protocol):
    def settings(self, shop_id: int) -> ProgramSettings: ...

    def save_settings(self, shop_id: int, settings: ProgramSettings) -> None: ...

    def tiers(self, shop_id: int) -> list[Tier]: ...

    def save_tier(self, shop_id: int, tier: Tier) -> Tier: ...

    def delete_tier(self, shop_id: int, tier_id: int) -> bool: ...

    def shared_discount(self, shop_id: int, terms_key: str) -> str | None:
        """The Shopify discount (GID) that holds the codes for these terms, if made yet."""
        ...

    def add_shared_discount(
        self, shop_id: int, terms_key: str, discount_gid: str, title: str
    ) -> None: ...

    def forget_shared_discount(self, shop_id: int, discount_gid: str) -> None:
        """The discount is gone in Shopify: the next sync makes a new one."""
        ...

    def shared_discounts(self, shop_id: int) -> dict[str, str]:
        """Every shared discount of the shop: discount GID → the terms key it was made for."""
        ...


@dataclass(frozen=True)
class TaskRun:
    id: int
    shop_id: int
    kind: str
    status: str  # running | done | failed
    total: int
    done: int
    failed: int
    report: Mapping[str, Any]
    started_at: datetime
    finished_at: datetime | None


class TaskRunRepository(Protocol):
    """Progress of long work (bulk enrolment, imports, backfills) for the admin and the CLI."""

    def start(self, shop_id: int, kind: str, total: int) -> int: ...

    def advance(self, run_id: int, done: int = 0, failed: int = 0) -> None: ...

    def finish(self, run_id: int, status: str, report: Mapping[str, Any]) -> None: ...

    def get(self, shop_id: int, run_id: int) -> TaskRun | None: ...


# --- Shopify operations the program needs ------------------------------------------------


@dataclass(frozen=True)
class CustomerSummary:
    id: int
    email: str | None
    first_name: str
    last_name: str
    orders: int
    amount_spent: Decimal
    currency: str
    last_order_at: datetime | None
    created_at: datetime | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerPage:
    customers: list[CustomerSummary]
    next_cursor: str | None


@dataclass(frozen=True)
class RedeemCodeResult:
    code: str
    redeem_code_gid: str | None  # None when Shopify refused the code
    error: str | None = None  # e.g. "taken"


class DiscountPlatform(Protocol):
    """Discount codes and customers in the store (Shopify Admin GraphQL)."""

    def create_code_discount(
        self,
        shop_domain: str,
        access_token: str,
        terms: FriendDiscount,
        title: str,
        first_code: str,
    ) -> tuple[str, RedeemCodeResult]:
        """Make the shared discount with its first code; returns (discount GID, that code)."""
        ...

    def update_code_discount(
        self, shop_domain: str, access_token: str, discount_gid: str, terms: FriendDiscount
    ) -> bool:
        """Give an existing discount these terms and their title, keeping its codes
        (``discountCodeBasicUpdate``). Idempotent: the same terms again change nothing. False
        when the discount no longer exists in Shopify."""
        ...

    def add_redeem_codes(
        self, shop_domain: str, access_token: str, discount_gid: str, codes: list[str]
    ) -> list[RedeemCodeResult]:
        """Add codes to a discount (250 per call, asynchronous in Shopify; waits for it)."""
        ...

    def delete_redeem_codes(
        self, shop_domain: str, access_token: str, discount_gid: str, redeem_code_gids: list[str]
    ) -> None: ...

    def discount_codes(
        self, shop_domain: str, access_token: str, discount_gid: str
    ) -> dict[str, str] | None:
        """Every code of the discount (upper-case code → redeem code GID); None if the discount
        itself is gone."""
        ...

    def search_customers(
        self,
        shop_domain: str,
        access_token: str,
        query: str | None,
        after: str | None,
        first: int = 100,
        sort: str = "AMOUNT_SPENT",
    ) -> CustomerPage: ...

    def find_customer_by_email(
        self, shop_domain: str, access_token: str, email: str
    ) -> CustomerSummary | None: ...

    def get_customer(
        self, shop_domain: str, access_token: str, customer_id: int
    ) -> CustomerSummary | None: ...

    def tag_customer(
        self, shop_domain: str, access_token: str, customer_id: int, tag: str, *, add: bool
    ) -> None: ...


@dataclass(frozen=True)
class BulkOperationState:
    """A Shopify bulk query operation as last read. ``status``: CREATED, RUNNING, COMPLETED,
    FAILED, CANCELING, CANCELED or EXPIRED; ``url`` is set once COMPLETED (None when the query
    found nothing)."""

    id: str
    status: str
    object_count: int
    error_code: str | None = None
    url: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")


class BulkOperationBusy(PlatformRetryable):
    """Shopify already runs as many bulk queries for this app and shop as it allows."""


class CustomerExport(Protocol):
    """Every customer of a store through a Shopify bulk operation (for large stores)."""

    def count_customers(self, shop_domain: str, access_token: str) -> int: ...

    def start_customer_export(self, shop_domain: str, access_token: str) -> BulkOperationState:
        """Start a bulk query of the customers who ordered. Raises :class:`BulkOperationBusy`
        when Shopify runs as many bulk queries as it allows."""
        ...

    def bulk_operation(
        self, shop_domain: str, access_token: str, operation_id: str
    ) -> BulkOperationState | None: ...

    def cancel_bulk_operation(self, shop_domain: str, access_token: str, operation_id: str) -> None:
        ...

    def open_customer_export(self, url: str) -> AbstractContextManager[Iterable[CustomerSummary]]:
        """Download a completed export (streamed to a temporary file, never held in memory);
        the iterable reads it afresh each time it is iterated, one customer at a time."""
        ...


class Notifier(Protocol):
    """Sends a message (email in production; the console backend prints it)."""

    def send(self, to: str, subject: str, body: str) -> None: ...


# --- attribution and the reward ledger ------------------------------------------------------


@dataclass(frozen=True)
class AttributionRecord:
    """The explanation kept for every order: who was credited by which rule, or why nobody."""

    order_id: int
    ambassador_id: int | None
    code: str | None
    rule: str
    reason: Reason
    candidates: tuple[Candidate, ...]
    rate: Decimal | None
    base: Decimal
    reward: Decimal
    currency: str
    placed_at: datetime | None
    cancelled: bool
    decided_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class LedgerEntry:
    ambassador_id: int
    order_id: int | None
    kind: str
    amount: Decimal
    currency: str
    presentment_amount: Decimal | None
    presentment_currency: str | None
    reason: str
    idempotency_key: str
    id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class RewardTotals:
    attributed_orders: int
    attributed_revenue: Decimal
    currency: str
    pending: Decimal
    approved: Decimal
    paid: Decimal
    reversed: Decimal
    balance: Decimal
    last_referral_at: datetime | None


class OrderRepository(Protocol):
    def lock(self, shop_id: int, order_id: int) -> Order | None:
        """:meth:`lock_many` for one order."""
        ...

    def lock_many(self, shop_id: int, order_ids: Iterable[int]) -> dict[int, Order]:
        """Serialise with every other writer of these orders until the unit of work ends (also
        for orders not stored yet), and return the stored snapshots, refunds merged."""
        ...

    def get(self, shop_id: int, order_id: int) -> Order | None: ...

    def save_many(self, shop_id: int, snapshots: Sequence[Order], source: str) -> set[int]:
        """Store each snapshot (distinct order ids) unless the stored one is newer by
        ``updated_at``; returns the ids stored."""
        ...

    def add_refunds(self, shop_id: int, refunds: Iterable[Refund]) -> int:
        """Keep refunds (known ones are ignored); returns how many were new."""
        ...

    def refunds(self, shop_id: int, order_ids: list[int]) -> dict[int, tuple[Refund, ...]]:
        """The refunds kept per order (also for orders not stored yet), by refund id."""
        ...

    def identities(
        self, shop_id: int, codes: list[str], *, exclude_orders: Sequence[int] = ()
    ) -> dict[str, AmbassadorIdentity]:
        """Ambassadors holding these codes (upper case), with the phones and addresses of
        their own stored orders but ``exclude_orders``."""
        ...

    def returning_customer(self, shop_id: int, order: Order) -> bool: ...

    def redact_customer(
        self, shop_id: int, customer_id: int | None, order_ids: list[int]
    ) -> int: ...

    def for_customer(
        self, shop_id: int, customer_id: int | None, order_ids: list[int]
    ) -> list[dict[str, Any]]: ...


class LedgerRepository(Protocol):
    def attribution(self, shop_id: int, order_id: int) -> AttributionRecord | None: ...

    def attributions(
        self, shop_id: int, order_ids: Iterable[int]
    ) -> dict[int, AttributionRecord]: ...

    def save_attributions(self, shop_id: int, records: Sequence[AttributionRecord]) -> None:
        """Insert or replace each order's explanation (distinct order ids)."""
        ...

    def booked(
        self, shop_id: int, order_ids: Iterable[int]
    ) -> dict[int, dict[int, tuple[Decimal, int]]]:
        """Per order, per ambassador: the sum of the order's entries and how many there are."""
        ...

    def append(self, shop_id: int, entries: Sequence[LedgerEntry]) -> int:
        """Append entries; a repeated idempotency key is ignored. Returns how many were new."""
        ...

    def entries(
        self, shop_id: int, ambassador_id: int, *, after_id: int | None = None, limit: int = 100
    ) -> list[LedgerEntry]: ...

    def hold(self, shop_id: int, holds: Sequence[tuple[int, int, datetime]]) -> None:
        """Start each (order id, ambassador id, hold until) reward's hold; one that already
        started keeps its date."""
        ...

    def approve_due(self, now: datetime, limit: int = 5000) -> list[tuple[int, int]]: ...

    def refresh_stats(self, shop_id: int, ambassador_id: int, currency: str | None) -> None:
        """Recompute from the ledger before the commit (``currency`` None: the ambassador's
        entries' currency)."""
        ...

    def flush(self) -> None:
        """Recompute the statistics marked by :meth:`refresh_stats` (the unit of work calls it
        before committing)."""
        ...

    def totals(self, shop_id: int, ambassador_ids: list[int]) -> dict[int, RewardTotals]: ...

    def results_since(self, shop_id: int, since: datetime) -> dict[int, Results]:
        """Tier results per ambassador over orders placed since ``since``."""
        ...


# --- applications and the notification outbox ----------------------------------------------


class ApplicationRepository(Protocol):
    """Applications and their committee votes. Every read is scoped to a shop; votes are only
    reached through an application the caller already read for that shop."""

    def add(self, application: Application) -> Application: ...

    def get(
        self, shop_id: int, application_id: int, *, for_update: bool = False
    ) -> Application | None:
        """With ``for_update``, the application row stays locked until the unit of work ends:
        votes and decisions on one application are serialised."""
        ...

    def pending_for(self, shop_id: int, ambassador_id: int) -> Application | None: ...

    def search(
        self,
        shop_id: int,
        status: ApplicationStatus | None,
        after_id: int | None,
        limit: int,
    ) -> list[Application]:
        """Oldest first (first come, first reviewed); keyset on id."""
        ...

    def count_recent(
        self,
        shop_id: int,
        since: datetime,
        *,
        client_hash: str | None = None,
        email: str | None = None,
    ) -> int:
        """Applications created since ``since`` from this client (or for this email)."""
        ...

    def decide(self, application: Application) -> bool:
        """Store the decision (status, reason, decided_by/at, tier) of a still pending
        application; False when it was no longer pending."""
        ...

    def record_vote(self, application_id: int, vote: ApplicationVote) -> None:
        """One vote per reviewer: a second vote by the same reviewer replaces the first."""
        ...

    def votes(self, application_id: int) -> list[ApplicationVote]: ...

    def vote_counts(self, application_ids: list[int]) -> dict[int, tuple[int, int]]:
        """(approve, reject) votes of each application."""
        ...

    def for_ambassador(self, shop_id: int, ambassador_id: int) -> list[Application]:
        """Every application of one person, oldest first (privacy exports)."""
        ...

    def redact_ambassador(self, shop_id: int, ambassador_id: int, email: str) -> int:
        """customers/redact: blank what the person wrote (answers, social), the customer id,
        the client hash and reviewers' comments; ``email`` replaces their address. Statuses and
        decisions stay. Returns the applications changed."""
        ...


@dataclass(frozen=True)
class Notification:
    """A message in the outbox. Keys starting with one of :data:`SECRET_MESSAGE_KEYS` carry a
    one-time secret (a sign-in link): their body is forgotten once sent."""

    id: int
    shop_id: int
    key: str
    to: str
    subject: str
    body: str
    status: str  # pending | sent
    created_at: datetime
    sent_at: datetime | None = None


#: Outbox keys of messages that carry a one-time secret (sign-in links: portal login, invitation).
SECRET_MESSAGE_KEYS = ("portal-login:", "invite:")


class NotificationOutbox(Protocol):
    """Messages written in the same transaction as the event they tell about, sent by a job."""

    def add(self, shop_id: int, key: str, to: str, subject: str, body: str) -> bool:
        """Idempotent on ``(shop_id, key)``: False (and nothing written) when already there."""
        ...

    def claim_next(self, after_id: int = 0) -> Notification | None:
        """The oldest pending message with an id above ``after_id``, row-locked until the unit
        of work ends (``SKIP LOCKED``: concurrent senders take different messages)."""
        ...

    def mark_sent(self, notification_id: int, at: datetime, *, forget_body: bool = False) -> None:
        """Sent; ``forget_body`` replaces the stored text (it held a secret) with a note."""
        ...

    def redact_to(self, shop_id: int, to: str) -> int:
        """customers/redact: delete every message to this address (pending ones are never
        sent). Returns how many."""
        ...


# --- reconciliation of missed webhooks ------------------------------------------------------


class OrderSource(Protocol):
    """Orders as the store has them now, for reconciliation. Each order is a REST-shaped dict
    (the shape of webhook bodies) that :meth:`Order.from_payload` reads, refunds included."""

    def updated_since(
        self,
        shop_domain: str,
        access_token: str,
        since: datetime,
        page_size: int = 50,
        *,
        until: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every order updated in ``[since, until]``, oldest update first, paginated and paced
        by the platform's rate limit (the adapter may cap ``page_size``). Raises
        :class:`PlatformError` subclasses."""
        ...

    def order(self, shop_domain: str, access_token: str, order_id: int) -> dict[str, Any] | None:
        """One order as it is now; None when the store has no such order."""
        ...


@dataclass(frozen=True)
class ReconcileCounts:
    seen: int = 0
    applied: int = 0
    found_only_here: int = 0  # orders we had never stored: their webhooks were missed
    stale: int = 0  # Shopify's listing was older than what we hold (not applied)
    errors: int = 0


@dataclass(frozen=True)
class ReconciliationRun:
    id: int
    shop_id: int
    status: str  # running | done | failed
    window_start: datetime
    window_end: datetime
    started_at: datetime
    finished_at: datetime | None
    counts: ReconcileCounts
    error: str | None = None


@dataclass(frozen=True)
class WebhookLag:
    """How late deliveries reached us: ``received_at - triggered_at`` (Shopify's header)."""

    deliveries: int
    p50_seconds: float | None
    max_seconds: float | None


class ReconciliationRepository(Protocol):
    """Reconciliation runs (their windows are the watermark), and the webhook-health figures
    they are read with."""

    def start(
        self,
        shop_id: int,
        window_start: datetime,
        window_end: datetime,
        *,
        abandoned_before: datetime,
    ) -> int | None:
        """Record a running run and return its id; None (nothing recorded) when one of the shop
        is already running. Runs still ``running`` that started before ``abandoned_before`` (a
        killed worker) are closed as failed first. Callers hold the shop's row lock."""
        ...

    def progress(self, run_id: int, counts: ReconcileCounts) -> None: ...

    def finish(
        self, run_id: int, status: str, counts: ReconcileCounts, error: str | None = None
    ) -> None: ...

    def watermark(self, shop_id: int) -> datetime | None:
        """The end of the newest window read completely (the latest ``done`` run)."""
        ...

    def last(self, shop_id: int) -> ReconciliationRun | None: ...

    def found_since(self, shop_id: int, since: datetime) -> int:
        """Orders found only by reconciliation in runs started since ``since``."""
        ...

    def webhook_lag(self, shop_domain: str, since: datetime) -> WebhookLag:
        """Lag of the shop's deliveries received since ``since`` (those with a trigger time)."""
        ...


# --- Salesforce (the CRM) -----------------------------------------------------------------


class CrmError(PlatformError):
    """A Salesforce call failed as a whole. ``code`` is Salesforce's ``errorCode``."""

    def __init__(self, message: str, *, code: str = "", http_status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.http_status = code, http_status


class CrmSessionExpired(CrmError):
    """401 ``INVALID_SESSION_ID``: refresh the access token (once) and call again."""


class CrmReauthRequired(PlatformUnauthorized):
    """The refresh token was refused (``invalid_grant``): the merchant must connect again."""


class CrmLimitExceeded(CrmError):
    """403 ``REQUEST_LIMIT_EXCEEDED`` for the org's daily pool: pause; never retry in a loop."""


class CrmUnavailable(CrmError):
    """5xx, timeouts, connection errors, the concurrent-request limit: try again later."""

    retryable = True


class CrmSetupError(CrmError):
    """A field or object the sync needs is missing or not accessible (e.g. the external id
    field): the org must be fixed; retrying the same call will not help."""


@dataclass(frozen=True)
class CrmToken:
    access_token: str
    refresh_token: str | None
    instance_url: str
    identity_url: str | None = None  # ``id``: …/id/<org id>/<user id>
    scope: str = ""


@dataclass(frozen=True)
class CrmWriteResult:
    """One record's outcome in a collection or bulk write (aligned with the records sent)."""

    ok: bool
    contact_id: str | None = None
    created: bool = False
    error_code: str | None = None
    message: str | None = None


class CrmSession(Protocol):
    """One org with one access token (a new session after each refresh). Every method raises
    the :class:`CrmError` family for whole-call failures; per-record failures come back as
    :class:`CrmWriteResult`. ``usage`` is the org's pool as of the last response
    (``Sforce-Limit-Info``); ``calls`` counts the API calls made."""

    usage: ApiUsage | None
    calls: int

    def describe_contact(self) -> dict[str, bool]:
        """Contact's fields: API name → updateable by this user."""
        ...

    def find_contacts(self, soql: str) -> list[ContactMatch]:
        """Run an email-match query (every page)."""
        ...

    def upsert(self, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        """Upsert ≤200 Contacts by ``Ambassador_Id__c`` (sObject Collections, allOrNone false)."""
        ...

    def update(self, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        """Update ≤200 Contacts by ``Id`` (sObject Collections, allOrNone false)."""
        ...

    def bulk(self, operation: str, records: Sequence[Mapping[str, Any]]) -> list[CrmWriteResult]:
        """``upsert`` (by ``Ambassador_Id__c``) or ``update`` (by ``Id``) through a Bulk API 2.0
        ingest job; waits for the job and returns the results aligned with ``records``."""
        ...

    def limits(self) -> ApiUsage | None:
        """The org's daily pool now (``GET /limits``)."""
        ...

    def assign_permission_set(self, name: str, user_id: str) -> bool:
        """Give the user the permission set (idempotent); False when there is no such set."""
        ...

    def deploy(self, package_zip: bytes) -> str:
        """Start a Metadata API deploy of a zip; returns the deploy id."""
        ...

    def deploy_status(self, deploy_id: str) -> tuple[bool, bool, str | None]:
        """(done, succeeded, error message) of a deploy."""
        ...


class CrmGateway(Protocol):
    """Salesforce's OAuth endpoints and a factory of API sessions."""

    def authorize_url(self, state: str, code_verifier: str, redirect_uri: str) -> str:
        """The web server flow's authorize URL with a PKCE S256 challenge of the verifier."""
        ...

    def exchange_code(self, code: str, code_verifier: str, redirect_uri: str) -> CrmToken: ...

    def refresh(self, refresh_token: str) -> CrmToken:
        """Refresh grant. Raises :class:`CrmReauthRequired` on ``invalid_grant``. A rotated
        refresh token comes back in the result; without rotation it is ``None``."""
        ...

    def revoke(self, token: str) -> None:
        """Revoke a (refresh) token; best effort, an already dead token is fine."""
        ...

    def session(self, instance_url: str, access_token: str) -> CrmSession: ...


class SalesforceRepository(Protocol):
    """Connections (tokens encrypted at rest) and each ambassador's Contact link."""

    def connection(self, shop_id: int, *, for_update: bool = False) -> SalesforceConnection | None:
        """With ``for_update`` the row stays locked until the unit of work ends: refreshes are
        serialised per org (a rotated refresh token is single-use)."""
        ...

    def save_connection(self, connection: SalesforceConnection) -> None: ...

    def connected_shops(self) -> list[str]:
        """Domains of installed shops with a connected org."""
        ...

    def begin_sync(self, shop_id: int, until: datetime) -> bool:
        """Take the org's sync lease until ``until``; False when another sync holds it."""
        ...

    def end_sync(self, shop_id: int) -> None: ...

    def snapshots(self, shop_id: int) -> list[tuple[AmbassadorSnapshot, ContactLink | None]]:
        """Every ambassador of the shop as the sync sees it, with its link (None: never synced)."""
        ...

    def save_links(self, shop_id: int, links: Sequence[ContactLink]) -> None:
        """Insert or replace links. The ``erase`` flag is never cleared here (a redaction that
        landed while a sync was in flight must still be applied)."""
        ...

    def forget(self, shop_id: int, ambassador_ids: Sequence[int]) -> None:
        """Drop links (after an erasure was written to Salesforce)."""
        ...

    def forget_all(self, shop_id: int) -> None:
        """Drop every link (connected to another org)."""
        ...

    def request_erasure(self, shop_id: int, ambassador_id: int) -> None:
        """customers/redact: the next sync clears this ambassador's Contact fields."""
        ...

    def parked(self, shop_id: int, limit: int = 100) -> list[tuple[ContactLink, str]]:
        """Parked links with the ambassador's email, most recent first."""
        ...

    def noted(self, shop_id: int, limit: int = 100) -> list[tuple[ContactLink, str]]:
        """Synced links with a note (several Contacts had the email: which one was used)."""
        ...

    def retry_parked(self, shop_id: int) -> int:
        """Make every parked (and backing-off) record due again; returns how many."""
        ...

    def counts(self, shop_id: int) -> dict[str, int]:
        """Links per state (``synced``, ``retry``, ``parked``)."""
        ...


# --- reward fulfilment ----------------------------------------------------------------------


@dataclass(frozen=True)
class Payout:
    """One delivery of rewards to an ambassador (see :mod:`connector.domain.payouts`)."""

    id: int
    shop_id: int
    ambassador_id: int
    batch_id: int | None
    form: RewardForm
    state: PayoutState
    amount: Decimal  # leaves the balance
    value: Decimal  # reaches the ambassador
    currency: str
    idempotency_key: str
    created_at: datetime
    updated_at: datetime
    recipient_email: str | None = None
    reward_code: str | None = None
    external_id: str | None = None
    external_hint: str | None = None
    attempts: int = 0
    first_attempt_at: datetime | None = None
    retry_at: datetime | None = None
    lease_until: datetime | None = None
    error_code: str | None = None
    error: str | None = None
    fulfilled_at: datetime | None = None


@dataclass(frozen=True)
class NewPayout:
    ambassador_id: int
    batch_id: int | None
    form: RewardForm
    state: PayoutState
    amount: Decimal
    value: Decimal
    currency: str
    recipient_email: str | None = None


@dataclass(frozen=True)
class PayoutEvent:
    payout_id: int
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    at: datetime


@dataclass(frozen=True)
class PayoutBatch:
    id: int
    shop_id: int
    period: str
    created_at: datetime
    created_by: str
    approved_at: datetime | None = None
    approved_by: str | None = None
    exported_at: datetime | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class PayoutPreference:
    ambassador_id: int
    form: RewardForm
    paypal_email: str | None = None


class PayoutRepository(Protocol):
    """Payouts, their batches, transitions and the ambassadors' choices. Reads are scoped to a
    shop except :meth:`due` (the scheduler's scan)."""

    def lock_ambassador(self, shop_id: int, ambassador_id: int) -> bool:
        """Serialise reservations of one ambassador's balance (row lock until commit). False
        when no such ambassador in the shop."""
        ...

    def lock_ambassadors(self, shop_id: int, ambassador_ids: Sequence[int]) -> None:
        """``lock_ambassador`` for many, in few statements and in id order (no deadlock with
        another run or a redemption taking the same rows)."""
        ...

    def payable(
        self, shop_id: int, ambassador_ids: Sequence[int] | None = None
    ) -> dict[int, Decimal]:
        """Per ambassador: ledger entries on approved orders plus non-order entries (bonuses,
        payouts, releases). May be negative (a refund after payment). None: every ambassador."""
        ...

    def add_batch(self, shop_id: int, period: str, actor: str) -> PayoutBatch | None:
        """A new batch, or None when the shop already has one for ``period``."""
        ...

    def batch(self, shop_id: int, batch_id: int) -> PayoutBatch | None: ...

    def batches(self, shop_id: int, limit: int = 50) -> list[PayoutBatch]: ...

    def update_batch(self, batch: PayoutBatch) -> None: ...

    def add(self, shop_id: int, payout: NewPayout, actor: str, reason: str) -> Payout:
        """Insert with its idempotency key and its first event."""
        ...

    def get(self, shop_id: int, payout_id: int, *, for_update: bool = False) -> Payout | None: ...

    def move(
        self, payout: Payout, target: Payout, actor: str, reason: str | None
    ) -> None:
        """Write ``target`` (the same payout, changed) and record the transition."""
        ...

    def search(
        self,
        shop_id: int,
        *,
        states: Sequence[PayoutState] = (),
        ambassador_id: int | None = None,
        batch_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Payout]:
        """Newest first."""
        ...

    def due(self, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
        """(shop id, payout id) of Shopify-form payouts to fulfil now: approved and due for a
        (re)try, or fulfilling with an expired lease (its worker died)."""
        ...

    def events(self, shop_id: int, payout_id: int) -> list[PayoutEvent]: ...

    def open_figures(self, now: datetime) -> tuple[dict[str, int], datetime | None]:
        """Every shop: payouts per open state (awaiting approval, approved, fulfilling,
        failed), and when the longest-waiting due Shopify-form payout last changed (None when
        none waits): for the operator's metrics."""
        ...

    def batch_totals(
        self, shop_id: int, batch_ids: Sequence[int]
    ) -> dict[int, list[tuple[str, str, str, Decimal, int]]]:
        """Per batch: (form, state, currency, sum of amounts, count) of its payouts, one
        aggregate query for any number of batches."""
        ...

    def recorded_externals(self, shop_id: int, form: RewardForm, ambassador_id: int) -> set[str]:
        """External ids already recorded by this ambassador's payouts of this form (never
        claimed twice). Per ambassador: a store-credit account belongs to one customer, so
        the set stays as small as that ambassador's history."""
        ...

    def preference(self, shop_id: int, ambassador_id: int) -> PayoutPreference | None: ...

    def preferences(self, shop_id: int) -> dict[int, PayoutPreference]: ...

    def save_preference(self, shop_id: int, preference: PayoutPreference) -> None: ...

    def totals_by_form(self, shop_id: int) -> dict[tuple[str, str], tuple[Decimal, int]]:
        """(form, state) → (amount, count) over the shop's payouts."""
        ...

    def shop_domains(self, shop_ids: Iterable[int]) -> dict[int, str]: ...

    def unlocks(self, shop_id: int, ambassador_id: int) -> list[tuple[datetime, Decimal]]:
        """The ambassador's rewards still in hold: (hold ends, amount), soonest first."""
        ...

    def pending_total(self, shop_id: int) -> Decimal:
        """Everything in hold in the shop."""
        ...


@dataclass(frozen=True)
class IssuedReward:
    """What Shopify holds for a payout: its id, a hint to show (a gift card's last
    characters, a code), and whether an earlier attempt had already created it."""

    external_id: str
    hint: str | None
    found_existing: bool = False


class RewardRefused(PlatformError):
    """Shopify refused the reward for good (missing scope, customer gone, currency refused,
    invalid input): retrying cannot help. ``code`` is stable (shown to the merchant)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RewardPlatform(Protocol):
    """Where Shopify-form rewards are created. Every call first looks for what an earlier
    attempt of the same payout created when ``since`` is given (a retry), and creates only if
    nothing is found: a worker killed between Shopify's answer and our commit pays once."""

    def issue_gift_card(
        self,
        shop_domain: str,
        access_token: str,
        *,
        key: str,
        customer_id: int,
        value: Money,
        message: str,
        since: datetime | None,
    ) -> IssuedReward: ...

    def issue_store_credit(
        self,
        shop_domain: str,
        access_token: str,
        *,
        key: str,
        customer_id: int,
        value: Money,
        since: datetime | None,
        taken: set[str],
    ) -> IssuedReward: ...

    def issue_code(
        self,
        shop_domain: str,
        access_token: str,
        *,
        key: str,
        code: str,
        customer_id: int,
        value: Money | None,
        product_id: str | None,
        title: str,
        since: datetime | None,
    ) -> IssuedReward:
        """A single-use code for one customer: ``value`` off the order, or (``product_id``)
        one product free."""
        ...


# --- engagement: scores, challenges, content, resources, the portal --------------------------


@dataclass(frozen=True)
class StoredScore:
    ambassador_id: int
    score: Decimal
    band: str
    components: tuple[Mapping[str, Any], ...]
    computed_at: datetime


@dataclass(frozen=True)
class ActivityCounts:
    """What an ambassador did outside orders over a window (the engagement inputs)."""

    content_submitted: int = 0
    content_approved: int = 0
    challenges: int = 0
    portal_visits: int = 0  # distinct days with a portal visit or a resource download


class EngagementRepository(Protocol):
    def scorable(self, shop_id: int) -> list[int]:
        """Ids of the ambassadors that are scored (active or paused)."""
        ...

    def activity(self, shop_id: int, since: datetime) -> dict[int, ActivityCounts]:
        """Per ambassador: submissions, challenges joined and portal days since ``since``."""
        ...

    def save_scores(self, shop_id: int, scores: Sequence[tuple[int, Score]]) -> None:
        """Replace these ambassadors' stored scores."""
        ...

    def drop_unscored(self, shop_id: int, keep: Sequence[int]) -> int:
        """Delete stored scores of ambassadors not in ``keep`` (removed, back to applied)."""
        ...

    def scores(
        self, shop_id: int, ambassador_ids: Sequence[int] | None = None
    ) -> dict[int, StoredScore]:
        """Stored scores (every scored ambassador of the shop when ``ambassador_ids`` is None)."""
        ...

    def band_counts(self, shop_id: int) -> BandCounts: ...

    def save_snapshot(self, shop_id: int, day: date, counts: BandCounts) -> None:
        """The day's band counts (a later scoring the same day replaces them)."""
        ...

    def snapshots(self, shop_id: int, since: date) -> list[tuple[date, BandCounts]]: ...

    def record(self, shop_id: int, ambassador_id: int, kind: str, ref: str, at: datetime) -> bool:
        """Note an event (``portal_visit``, ``resource_download``, ``disclosure_ack``); one per
        (ambassador, kind, ref, day): False when the day already has it."""
        ...

    def first_event(self, shop_id: int, ambassador_id: int, kind: str) -> datetime | None: ...

    def add_login_token(
        self, shop_id: int, ambassador_id: int, token_hash: str, expires_at: datetime
    ) -> None: ...

    def use_login_token(self, token_hash: str, now: datetime) -> tuple[int, int] | None:
        """(shop id, ambassador id) of an unused, unexpired token, marking it used (single
        use, atomic); None otherwise."""
        ...

    def recent_login_tokens(self, shop_id: int, ambassador_id: int, since: datetime) -> int: ...

    def next_unlock(self, shop_id: int, ambassador_id: int) -> tuple[datetime, int] | None:
        """(earliest hold end, rewards still on hold) of the ambassador's pending rewards."""
        ...

    def roi_inputs(
        self, shop_id: int, since: datetime, until: datetime
    ) -> tuple[list[RoiOrder], list[CostEntry], list[tuple[datetime, int, int | None]]]:
        """The return-on-influence inputs of ``[since, until)``: every order with its
        attribution, the ledger entries (cost), and approved content (when, who, tier)."""
        ...


class ChallengeRepository(Protocol):
    def add(self, challenge: Challenge) -> Challenge: ...

    def get(self, shop_id: int, challenge_id: int, *, for_update: bool = False) -> Challenge | None:
        ...

    def search(self, shop_id: int, *, status: str | None = None) -> list[Challenge]:
        """Newest start first."""
        ...

    def due(self, now: datetime) -> list[tuple[int, int]]:
        """(shop id, challenge id) of open challenges that have ended, every shop."""
        ...

    def join(self, shop_id: int, challenge_id: int, ambassador_id: int, at: datetime) -> bool:
        """Idempotent: False when already a participant."""
        ...

    def participants(self, shop_id: int, challenge_id: int) -> list[int]: ...

    def joined(self, shop_id: int, ambassador_id: int) -> set[int]: ...

    def standings(self, challenge: Challenge) -> list[Standing]:
        """Every participant's metric over the challenge's time box, with when it was reached
        (unranked; the domain ranks)."""
        ...

    def close(self, challenge: Challenge, results: Sequence[Standing], at: datetime) -> bool:
        """Mark closed with its results; False when it was already closed."""
        ...


class ContentRepository(Protocol):
    def add_submission(self, submission: Submission) -> Submission | None:
        """Insert; None when the shop already has a submission of this URL."""
        ...

    def submission_by_url(self, shop_id: int, url_key: str) -> Submission | None: ...

    def get_submission(
        self, shop_id: int, submission_id: int, *, for_update: bool = False
    ) -> Submission | None: ...

    def submissions(
        self,
        shop_id: int,
        *,
        status: SubmissionStatus | None = None,
        ambassador_id: int | None = None,
        after_id: int | None = None,
        limit: int = 50,
    ) -> list[Submission]:
        """Newest first; keyset on id."""
        ...

    def decide(self, submission: Submission) -> bool:
        """Store the decision of a still pending submission; False when no longer pending."""
        ...

    def add_resource(self, resource: Resource) -> Resource: ...

    def get_resource(self, shop_id: int, resource_id: int) -> Resource | None: ...

    def resources(self, shop_id: int) -> list[Resource]:
        """Not archived, newest first."""
        ...

    def archive_resource(self, shop_id: int, resource_id: int) -> Resource | None: ...

    def count_download(self, shop_id: int, resource_id: int) -> None: ...

    def redact_ambassador(self, shop_id: int, ambassador_id: int) -> int:
        """customers/redact: blank the URLs and texts the person submitted (statuses stay, so
        the program's figures do). Returns the submissions changed."""
        ...


class FileStorage(Protocol):
    """Where uploaded files live (local disk by default). Keys are made by the core."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...
