"""The emulator's in-memory model of Shopify shops.

Plain dataclasses, no behaviour beyond derived amounts. They are only ever touched while the
emulator holds its lock (see :class:`~adapters.shopify.emulator.emulator.ShopifyEmulator`).
Money is ``Decimal``; an order keeps its amounts in the presentment currency and converts to
the shop currency with the order's ``fx_rate`` (shop units per presentment unit), as Shopify's
``*_set`` money bags do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any, Literal

from .values import ZERO, cents, zone

ValueType = Literal["percentage", "fixed_amount"]


@dataclass
class Bucket:
    """Shopify's GraphQL leaky bucket for one (app, shop): points refill continuously."""

    maximum: float
    restore_rate: float
    available: float
    updated_at: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)
        self.available = min(self.maximum, self.available + elapsed * self.restore_rate)
        self.updated_at = now


@dataclass
class Customer:
    id: int
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    tags: list[str]
    note: str | None
    created_at: datetime
    updated_at: datetime
    orders_count: int = 0
    amount_spent: Decimal = ZERO
    last_order_id: int | None = None
    last_order_name: str | None = None
    last_order_created_at: datetime | None = None
    state: str = "disabled"
    verified_email: bool = True

    @property
    def display_name(self) -> str:
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or self.email or self.phone or ""


@dataclass
class RedeemCode:
    id: int
    code: str
    discount_id: int
    created_at: datetime
    usage_count: int = 0


@dataclass
class Discount:
    """A ``DiscountCodeBasic`` and its ``DiscountCodeNode`` (same id)."""

    id: int
    title: str
    starts_at: datetime
    ends_at: datetime | None
    value_type: ValueType
    percentage: float | None
    amount: Decimal | None
    applies_on_each_item: bool
    context_all: bool
    customer_ids: set[int]
    minimum_subtotal: Decimal | None
    minimum_quantity: int | None
    usage_limit: int | None
    applies_once_per_customer: bool
    combines_with: dict[str, bool]
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    code_ids: list[int] = field(default_factory=list)
    usage_count: int = 0
    product_ids: frozenset[int] | None = None  # customerGets.items.products (None: all items)
    used_by: set[str] = field(default_factory=set)

    def status(self, now: datetime) -> str:
        if self.ends_at is not None and self.ends_at <= now:
            return "EXPIRED"
        if self.starts_at > now:
            return "SCHEDULED"
        return "ACTIVE"


@dataclass
class BulkCreation:
    """A ``DiscountRedeemCodeBulkCreation``: codes are added once ``due_at`` (clock) passes."""

    id: int
    discount_id: int
    created_at: datetime
    due_at: float
    requested: list[str]
    results: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False


@dataclass
class Job:
    """A generic asynchronous ``Job`` (e.g. redeem-code bulk delete)."""

    id: int
    due_at: float
    done: bool = False
    redeem_code_ids: list[int] = field(default_factory=list)


@dataclass
class BulkOperation:
    """A ``BulkOperation`` of type QUERY. Its result is computed when it is created (the JSONL
    lines, root rows flagged); :mod:`.bulk` moves it through CREATED → RUNNING → COMPLETED
    (or FAILED / CANCELING → CANCELED) as the emulator's clock passes."""

    id: int
    query: str
    created_at: datetime
    started_clock: float
    lines: list[bytes]
    roots: list[bool]
    status: str = "CREATED"
    object_count: int = 0
    root_object_count: int = 0
    completed_at: datetime | None = None
    error_code: str | None = None
    fail_after: int | None = None  # injected failure: FAILED after this many objects
    fail_code: str = "INTERNAL_SERVER_ERROR"
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.status in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")


@dataclass
class WebhookSubscription:
    id: int
    topic: str
    uri: str
    format: str
    api_version: str
    created_at: datetime
    updated_at: datetime
    include_fields: list[str] = field(default_factory=list)
    filter: str | None = None
    name: str | None = None


@dataclass
class DiscountApplication:
    code: str
    value_type: ValueType
    value: Decimal  # percent points (10.0) or a presentment amount
    allocation_method: Literal["across", "each"]
    amount: Decimal = ZERO  # what this code took off the order, presentment currency
    product_ids: frozenset[int] | None = None  # only lines of these products


@dataclass
class LineItem:
    id: int
    title: str
    price: Decimal  # presentment unit price
    quantity: int
    product_id: int | None
    variant_id: int | None
    sku: str | None = None
    variant_title: str | None = None
    allocations: list[tuple[int, Decimal]] = field(default_factory=list)  # (application idx, amt)
    refunded_quantity: int = 0

    @property
    def original_total(self) -> Decimal:
        return self.price * self.quantity

    @property
    def discount_total(self) -> Decimal:
        return sum((amount for _, amount in self.allocations), ZERO)

    @property
    def discounted_total(self) -> Decimal:
        return self.original_total - self.discount_total

    @property
    def current_quantity(self) -> int:
        return self.quantity - self.refunded_quantity


@dataclass
class RefundLine:
    id: int
    line_item_id: int
    quantity: int
    subtotal: Decimal  # presentment


@dataclass
class Transaction:
    id: int
    kind: Literal["sale", "refund"]
    amount: Decimal  # presentment
    created_at: datetime
    parent_id: int | None = None


@dataclass
class Refund:
    id: int
    order_id: int
    created_at: datetime
    note: str | None
    lines: list[RefundLine]
    transactions: list[Transaction]

    @property
    def amount(self) -> Decimal:
        return sum((line.subtotal for line in self.lines), ZERO)


@dataclass
class Order:
    id: int
    number: int
    email: str | None
    customer_id: int | None
    shop_currency: str
    presentment_currency: str
    fx_rate: Decimal
    created_at: datetime
    updated_at: datetime
    line_items: list[LineItem]
    applications: list[DiscountApplication]
    token: str
    test: bool = False
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    refunds: list[Refund] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    shipping_address: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"#{self.number + 1000}"

    @property
    def order_number(self) -> int:
        return self.number + 1000

    def shop_amount(self, presentment_amount: Decimal) -> Decimal:
        return cents(presentment_amount * self.fx_rate)

    @property
    def total_line_items_price(self) -> Decimal:
        return sum((li.original_total for li in self.line_items), ZERO)

    @property
    def total_discounts(self) -> Decimal:
        return sum((li.discount_total for li in self.line_items), ZERO)

    @property
    def subtotal_price(self) -> Decimal:
        return self.total_line_items_price - self.total_discounts

    @property
    def total_tax(self) -> Decimal:
        return ZERO

    @property
    def total_price(self) -> Decimal:
        return self.subtotal_price + self.total_tax

    @property
    def total_refunded(self) -> Decimal:
        return sum((refund.amount for refund in self.refunds), ZERO)

    @property
    def current_total_price(self) -> Decimal:
        return self.total_price - self.total_refunded

    @property
    def current_subtotal_price(self) -> Decimal:
        return self.subtotal_price - self.total_refunded

    @property
    def current_total_discounts(self) -> Decimal:
        remaining = ZERO
        for li in self.line_items:
            if li.quantity:
                remaining += cents(li.discount_total * li.current_quantity / li.quantity)
        return remaining

    @property
    def financial_status(self) -> str:
        if not self.refunds:
            return "paid"
        if all(li.current_quantity == 0 for li in self.line_items):
            return "refunded"
        return "partially_refunded"

    @property
    def discount_codes(self) -> list[str]:
        return [application.code for application in self.applications]


@dataclass
class GiftCard:
    id: int
    code: str
    initial_value: Decimal
    balance: Decimal
    currency: str
    customer_id: int | None
    note: str | None
    created_at: datetime
    updated_at: datetime
    expires_on: date | None = None
    enabled: bool = True


@dataclass
class StoreCreditTransaction:
    id: int
    amount: Decimal
    balance_after: Decimal
    created_at: datetime
    expires_at: datetime | None


@dataclass
class StoreCreditAccount:
    id: int
    customer_id: int
    currency: str
    balance: Decimal = ZERO
    transactions: list[StoreCreditTransaction] = field(default_factory=list)


@dataclass
class Shop:
    id: int
    domain: str
    name: str
    email: str
    currency: str
    iana_timezone: str
    plan: str
    created_at: datetime
    bucket: Bucket
    fx_rates: dict[str, Decimal] = field(default_factory=dict)
    installed: bool = False
    customers: dict[int, Customer] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    discounts: dict[int, Discount] = field(default_factory=dict)
    redeem_codes: dict[int, RedeemCode] = field(default_factory=dict)
    code_index: dict[str, int] = field(default_factory=dict)  # CODE.upper() → redeem code id
    bulk_creations: dict[int, BulkCreation] = field(default_factory=dict)
    jobs: dict[int, Job] = field(default_factory=dict)
    bulk_operations: dict[int, BulkOperation] = field(default_factory=dict)
    webhook_subscriptions: dict[int, WebhookSubscription] = field(default_factory=dict)
    gift_cards: dict[int, GiftCard] = field(default_factory=dict)
    store_credit_accounts: dict[int, StoreCreditAccount] = field(default_factory=dict)
    order_count: int = 0

    @property
    def tz(self) -> tzinfo:
        return zone(self.iana_timezone)

    @property
    def shop_name(self) -> str:
        return self.domain.removesuffix(".myshopify.com")

    def customer_by_email(self, email: str | None) -> Customer | None:
        if not email:
            return None
        wanted = email.strip().lower()
        for customer in self.customers.values():
            if customer.email and customer.email.lower() == wanted:
                return customer
        return None

    def redeem_code(self, code: str) -> RedeemCode | None:
        code_id = self.code_index.get(code.strip().upper())
        return self.redeem_codes.get(code_id) if code_id is not None else None
