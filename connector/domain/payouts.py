"""Reward fulfilment: the forms a reward takes, payout settings, and each payout's states.

Payouts are amount-based, like a bank statement: an ambassador's *payable* balance is the sum of
their ledger entries on orders whose hold has ended (approved), plus non-order entries (challenge
bonuses, payouts, released payouts). A payout reserves what is payable by appending a negative
``payout`` entry to the ledger in the same transaction that creates it, so nothing can be paid
twice; a payout cancelled or given up is released by a positive ``payout_released`` entry (the
ledger only appends). A refund that arrives after its order was paid appends a reversal as
always; the payable balance goes negative and is netted against the next payout first.

States of a payout::

    awaiting_approval ──approve──▶ approved ──claim──▶ fulfilling ──▶ fulfilled
           │                        ▲   │                  │
           └──reject──▶ cancelled ◀─┘   │ (cash: mark paid)└──▶ failed ──replay──▶ approved
                                        └────────────────────────────────────────▶ fulfilled
    failed ──release──▶ cancelled

A retryable error (throttling, 5xx, timeout) sends a fulfilling payout back to ``approved`` with a
``retry_at``; a permanent one (missing scope, customer gone, currency refused) parks it as
``failed`` with the reason, where the merchant replays or releases it.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

from connector.domain.money import Money, exponent


class RewardForm(StrEnum):
    CASH = "cash"  # PayPal Payouts or bank transfer, from a batch the merchant approves
    STORE_CREDIT = "store_credit"  # storeCreditAccountCredit on the ambassador's customer
    GIFT_CARD = "gift_card"  # giftCardCreate, sent to the ambassador
    DISCOUNT_CODE = "discount_code"  # a single-use fixed-amount code for the ambassador
    FREE_PRODUCT = "free_product"  # a single-use 100 %-off code for one product
    POINTS = "points"  # kept in the ledger; redeemed for another form on request


SHOPIFY_FORMS = frozenset(
    {
        RewardForm.STORE_CREDIT,
        RewardForm.GIFT_CARD,
        RewardForm.DISCOUNT_CODE,
        RewardForm.FREE_PRODUCT,
    }
)


class PayoutSchedule(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"  # Mondays
    MONTHLY = "monthly"  # the 1st
    MANUAL = "manual"  # only when the merchant runs it


class PayoutState(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    FULFILLING = "fulfilling"
    FULFILLED = "fulfilled"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States a payout leaves again (the rest are history): what an operator watches.
OPEN_STATES = (
    PayoutState.AWAITING_APPROVAL,
    PayoutState.APPROVED,
    PayoutState.FULFILLING,
    PayoutState.FAILED,
)

#: The transitions the state machine allows (anything else is refused with a 409).
TRANSITIONS: dict[PayoutState, frozenset[PayoutState]] = {
    PayoutState.AWAITING_APPROVAL: frozenset({PayoutState.APPROVED, PayoutState.CANCELLED}),
    PayoutState.APPROVED: frozenset(
        {PayoutState.FULFILLING, PayoutState.FULFILLED, PayoutState.CANCELLED}
    ),
    PayoutState.FULFILLING: frozenset(
        {PayoutState.FULFILLED, PayoutState.APPROVED, PayoutState.FAILED}
    ),
    PayoutState.FAILED: frozenset({PayoutState.APPROVED, PayoutState.CANCELLED}),
    PayoutState.FULFILLED: frozenset(),
    PayoutState.CANCELLED: frozenset(),
}

#: States whose amount is still owed to the ambassador (reserved, not yet delivered).
IN_FLIGHT = frozenset(
    {
        PayoutState.AWAITING_APPROVAL,
        PayoutState.APPROVED,
        PayoutState.FULFILLING,
        PayoutState.FAILED,
    }
)

#: Retryable failures before a payout is parked as failed (about 7 hours with the backoff below).
MAX_ATTEMPTS = 10


def can_move(current: PayoutState, target: PayoutState) -> bool:
    return target in TRANSITIONS[current]


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the ``attempts``-th retryable failure: 30 s doubling, capped at 1 hour."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


class PayoutSettingsInvalid(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class PayoutSettings:
    """How a program pays: the default form, what ambassadors may choose, when and from what
    amount, and whether the merchant approves each payout first."""

    form: RewardForm = RewardForm.STORE_CREDIT
    choosable_forms: tuple[RewardForm, ...] = ()  # forms an ambassador may pick instead
    store_credit_bonus_percent: Decimal = Decimal(0)  # extra value for choosing store credit
    minimum: Decimal = Decimal(0)  # in the shop currency
    schedule: PayoutSchedule = PayoutSchedule.MONTHLY
    merchant_approval: bool = False  # every payout waits for the merchant (cash always does)
    free_product_id: str | None = None  # gid://shopify/Product/…
    free_product_value: Decimal | None = None  # what one free product costs the balance
    points_per_unit: int = 100  # points shown per unit of the shop currency

    def allows(self, form: RewardForm) -> bool:
        return form == self.form or form in self.choosable_forms

    def to_dict(self) -> dict[str, Any]:
        return {
            "form": self.form.value,
            "choosable_forms": [f.value for f in self.choosable_forms],
            "store_credit_bonus_percent": str(self.store_credit_bonus_percent),
            "minimum": str(self.minimum),
            "schedule": self.schedule.value,
            "merchant_approval": self.merchant_approval,
            "free_product_id": self.free_product_id,
            "free_product_value": None
            if self.free_product_value is None
            else str(self.free_product_value),
            "points_per_unit": self.points_per_unit,
        }

    @classmethod
    def from_dict(cls, data: Any, base: PayoutSettings | None = None) -> PayoutSettings:
        """Merge ``data`` (a partial update) over ``base`` and validate; names the bad field."""
        if not isinstance(data, dict):
            raise PayoutSettingsInvalid("payouts", "must be an object")
        current = (base or cls()).to_dict()
        unknown = set(data) - set(current)
        if unknown:
            raise PayoutSettingsInvalid(f"payouts.{sorted(unknown)[0]}", "unknown setting")
        merged = {**current, **data}
        form = _enum(RewardForm, merged["form"], "payouts.form")
        raw_forms = merged["choosable_forms"]
        if not isinstance(raw_forms, list):
            raise PayoutSettingsInvalid("payouts.choosable_forms", "must be a list of forms")
        forms = tuple(
            dict.fromkeys(_enum(RewardForm, f, "payouts.choosable_forms") for f in raw_forms)
        )
        bonus = _decimal(merged["store_credit_bonus_percent"], "payouts.store_credit_bonus_percent")
        if not 0 <= bonus <= 100:
            raise PayoutSettingsInvalid("payouts.store_credit_bonus_percent", "0 to 100")
        minimum = _decimal(merged["minimum"], "payouts.minimum")
        if minimum < 0:
            raise PayoutSettingsInvalid("payouts.minimum", "must not be negative")
        schedule = _enum(PayoutSchedule, merged["schedule"], "payouts.schedule")
        approval = merged["merchant_approval"]
        if not isinstance(approval, bool):
            raise PayoutSettingsInvalid("payouts.merchant_approval", "must be true or false")
        product = merged["free_product_id"] or None
        if product is not None and (
            not isinstance(product, str) or not product.startswith("gid://shopify/Product/")
        ):
            raise PayoutSettingsInvalid(
                "payouts.free_product_id", "a product id like gid://shopify/Product/123"
            )
        value = merged["free_product_value"]
        product_value = (
            None if value in (None, "") else _decimal(value, "payouts.free_product_value")
        )
        if product_value is not None and product_value <= 0:
            raise PayoutSettingsInvalid("payouts.free_product_value", "must be above 0")
        uses_free_product = RewardForm.FREE_PRODUCT in (form, *forms)
        if uses_free_product and (product is None or product_value is None):
            raise PayoutSettingsInvalid(
                "payouts.free_product_id",
                "the free-product form needs free_product_id and free_product_value",
            )
        points = merged["points_per_unit"]
        if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= 10_000:
            raise PayoutSettingsInvalid("payouts.points_per_unit", "an integer from 1 to 10000")
        return cls(
            form=form,
            choosable_forms=forms,
            store_credit_bonus_percent=bonus,
            minimum=minimum,
            schedule=schedule,
            merchant_approval=approval,
            free_product_id=product,
            free_product_value=product_value,
            points_per_unit=points,
        )


def _enum(kind: Any, value: Any, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise PayoutSettingsInvalid(name, f"one of {allowed}") from None


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool | float):
        raise PayoutSettingsInvalid(name, 'give decimals as strings, e.g. "12.50"')
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        raise PayoutSettingsInvalid(name, "must be a decimal number") from None
    if not result.is_finite():
        raise PayoutSettingsInvalid(name, "must be a decimal number")
    return result


# --- what a run pays -------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutPlan:
    """One payout a run will create: ``amount`` leaves the balance, ``value`` reaches the
    ambassador (more than ``amount`` with the store-credit bonus)."""

    ambassador_id: int
    form: RewardForm
    amount: Money
    value: Money


def plan_payout(
    ambassador_id: int,
    payable: Money,
    form: RewardForm,
    settings: PayoutSettings,
    *,
    requested: Money | None = None,
) -> PayoutPlan | None:
    """What to pay from ``payable`` in ``form``, or None when nothing is due.

    Nothing is paid when the payable balance (negative balances from late refunds included:
    they are netted here first) is below the program minimum or below one minor unit. A free
    product costs its configured value and is paid only when the balance covers it. A request
    (a points redemption) pays exactly what was asked, if the balance covers it.
    """
    unit = Decimal(1).scaleb(-exponent(payable.currency))
    if form is RewardForm.POINTS:
        return None
    if requested is not None:
        amount = requested.amount
        if amount < unit or amount > payable.amount:
            return None
    else:
        amount = payable.amount.quantize(unit, rounding=ROUND_DOWN)
        if amount < unit or amount < settings.minimum:
            return None
    if form is RewardForm.FREE_PRODUCT:
        price = settings.free_product_value or Decimal(0)
        if price <= 0 or payable.amount < price:
            return None
        amount = price
    money = Money(amount, payable.currency)
    value = money
    if form is RewardForm.STORE_CREDIT and settings.store_credit_bonus_percent:
        bonus = (amount * settings.store_credit_bonus_percent / 100).quantize(
            unit, rounding=ROUND_DOWN
        )
        value = Money(amount + bonus, payable.currency)
    return PayoutPlan(ambassador_id, form, money, value)


def points(balance: Money, settings: PayoutSettings) -> int:
    """The payable balance shown as points (whole points, rounded down)."""
    return int((balance.amount * settings.points_per_unit).to_integral_value(rounding=ROUND_DOWN))


def points_to_money(count: int, currency: str, settings: PayoutSettings) -> Money:
    unit = Decimal(1).scaleb(-exponent(currency))
    amount = (Decimal(count) / settings.points_per_unit).quantize(unit, rounding=ROUND_DOWN)
    return Money(amount, currency)


# --- schedule --------------------------------------------------------------------------------


def period_key(schedule: PayoutSchedule, now: datetime) -> str | None:
    """The run a schedule owes at ``now`` (one run per key and shop), or None for manual.

    Daily: the day; weekly: the ISO week (runs from Monday); monthly: the month (from the 1st).
    """
    now = now.astimezone(UTC)
    if schedule is PayoutSchedule.DAILY:
        return now.strftime("%Y-%m-%d")
    if schedule is PayoutSchedule.WEEKLY:
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    if schedule is PayoutSchedule.MONTHLY:
        return now.strftime("%Y-%m")
    return None


def next_run(schedule: PayoutSchedule, now: datetime) -> datetime | None:
    """When the next scheduled run starts (for "when is my next payout")."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if schedule is PayoutSchedule.DAILY:
        return day + timedelta(days=1)
    if schedule is PayoutSchedule.WEEKLY:
        return day + timedelta(days=7 - now.weekday())
    if schedule is PayoutSchedule.MONTHLY:
        days = calendar.monthrange(now.year, now.month)[1]
        return day.replace(day=1) + timedelta(days=days)
    return None


# --- identities for exactly-once -------------------------------------------------------------


def idempotency_key(shop_id: int, payout_id: int) -> str:
    """The deterministic key of a payout's fulfilment (notes, lookups, logs)."""
    return f"ambassador-payout-{shop_id}-{payout_id}"


def reward_code(secret: bytes, key: str, prefix: str = "RWD") -> str:
    """The single-use code a discount or free-product payout creates: derived from the key with
    a keyed hash, so a retry after a crash asks Shopify for the very same code (and finds it),
    while nobody without the app's secret can guess one."""
    digest = hmac.new(secret, key.encode(), hashlib.sha256).digest()
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
    body = "".join(alphabet[b % len(alphabet)] for b in digest[:12])
    return f"{prefix}-{body}"


# --- cash exports ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CashLine:
    payout_id: int
    email: str
    name: str
    amount: Money
    reference: str = field(default="")


def paypal_rows(lines: list[CashLine], note: str) -> list[list[str]]:
    """A PayPal Payouts web-upload file (no header; one currency per file, at most 5,000 rows):
    recipient email, amount, currency, customer id (≤ 30 characters, no spaces: our payout
    reference), note to the recipient (≤ 400 characters), recipient wallet ``PAYPAL``."""
    return [
        [
            line.email,
            f"{line.amount.amount:.{exponent(line.amount.currency)}f}",
            line.amount.currency,
            line.reference or f"payout-{line.payout_id}",
            note[:400],
            "PAYPAL",
        ]
        for line in lines
    ]


BANK_HEADER = ["payout_id", "name", "email", "amount", "currency", "reference"]


def bank_rows(lines: list[CashLine]) -> list[list[str]]:
    """A generic bank-transfer sheet with a header; the merchant's bank tool matches on email."""
    return [BANK_HEADER] + [
        [
            str(line.payout_id),
            line.name,
            line.email,
            f"{line.amount.amount:.{exponent(line.amount.currency)}f}",
            line.amount.currency,
            line.reference or f"payout-{line.payout_id}",
        ]
        for line in lines
    ]


def spreadsheet_safe(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
