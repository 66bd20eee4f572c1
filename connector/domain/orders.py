"""Orders and refunds as the attribution needs them, parsed from Shopify's REST-shaped webhook
bodies (which are also what reconciliation builds from GraphQL).

Only what attribution and rewards use is kept: no addresses or names beyond what the
self-referral checks need (normalised and hashed).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any


class BadOrder(ValueError):
    """The payload is not an order we can read; the message says what is missing."""


def parse_ts(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def money(value: Any, default: str = "0") -> Decimal:
    """Shopify money: usually a string ("12.50"); some refund fields are JSON numbers."""
    if value is None or value == "":
        return Decimal(default)
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise BadOrder(f"not an amount: {value!r}") from exc
    if not result.is_finite():
        raise BadOrder(f"not an amount: {value!r}")
    return result


def _shop_money(obj: Mapping[str, Any] | None, fallback: Any = None) -> Decimal:
    shop = ((obj or {}).get("shop_money") or {}) if isinstance(obj, Mapping) else {}
    return money(shop.get("amount", fallback))


def _presentment_money(obj: Mapping[str, Any] | None, fallback: Any = None) -> Decimal:
    pres = ((obj or {}).get("presentment_money") or {}) if isinstance(obj, Mapping) else {}
    return money(pres.get("amount", fallback))


# --- identity signals for self-referral checks ----------------------------------------------


def normalise_email(email: str | None) -> str | None:
    """``Jo.Hn+promo@GMail.com`` → ``john@gmail.com``: lower case, plus-tag dropped, and dots
    dropped for Gmail (which ignores them), so one inbox is one identity."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, last 10 (drops the country code and formatting): good enough to match."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[-10:] if len(digits) >= 7 else None


def address_key(address: Mapping[str, Any] | None) -> str | None:
    """A hash of street line and postcode, normalised: matches the same door, stores no address."""
    if not isinstance(address, Mapping):
        return None
    street = re.sub(r"[^a-z0-9]", "", str(address.get("address1") or "").lower())
    postcode = re.sub(r"[^a-z0-9]", "", str(address.get("zip") or "").lower())
    if not street or not postcode:
        return None
    return hashlib.sha256(f"{street}|{postcode}".encode()).hexdigest()[:32]


# --- orders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    id: int
    quantity: int
    price: Decimal  # unit price, shop currency
    discount: Decimal  # total discount allocated to this line, shop currency
    presentment_paid: Decimal
    gift_card: bool = False

    @property
    def paid(self) -> Decimal:
        """What the customer paid for this line after discounts (before tax and shipping)."""
        return max(self.price * self.quantity - self.discount, Decimal(0))


@dataclass(frozen=True)
class Refund:
    id: int
    order_id: int
    created_at: datetime | None
    lines: tuple[tuple[int, int, Decimal], ...]  # (line item id, quantity, subtotal refunded)

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Refund:
        try:
            refund_id, order_id = int(data["id"]), int(data["order_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadOrder("refund without id or order_id") from exc
        lines = []
        for item in data.get("refund_line_items") or []:
            try:
                line_id = int(item["line_item_id"])
                quantity = int(item.get("quantity") or 0)
            except (KeyError, TypeError, ValueError) as exc:
                raise BadOrder("refund line without line_item_id") from exc
            subtotal = _shop_money(item.get("subtotal_set"), item.get("subtotal"))
            lines.append((line_id, quantity, subtotal))
        return cls(refund_id, order_id, parse_ts(data.get("created_at")), tuple(lines))


@dataclass(frozen=True)
class Order:
    id: int
    name: str
    updated_at: datetime | None
    created_at: datetime | None
    currency: str
    presentment_currency: str
    financial_status: str
    cancelled_at: datetime | None
    test: bool
    codes: tuple[tuple[str, Decimal], ...]  # (code as typed, discount amount), in applied order
    lines: tuple[Line, ...]
    customer_id: int | None
    customer_created_at: datetime | None
    email: str | None  # normalised
    phone: str | None  # normalised
    address: str | None  # address key
    refunds: tuple[Refund, ...] = field(default_factory=tuple)

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Order:
        try:
            order_id = int(data["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadOrder("order without a numeric id") from exc
        currency = str(data.get("currency") or "").upper()
        if len(currency) != 3:
            raise BadOrder("order without a currency")
        codes: dict[str, Decimal] = {}
        for entry in data.get("discount_codes") or []:
            code = str(entry.get("code") or "").strip()
            if code and code.upper() not in codes:
                codes[code.upper()] = money(entry.get("amount"))
        for app in data.get("discount_applications") or []:
            code = str(app.get("code") or "").strip() if app.get("type") == "discount_code" else ""
            if code and code.upper() not in codes:
                codes[code.upper()] = Decimal(0)
        lines = []
        for item in data.get("line_items") or []:
            try:
                line_id, quantity = int(item["id"]), int(item.get("quantity") or 0)
            except (KeyError, TypeError, ValueError) as exc:
                raise BadOrder("line item without id") from exc
            price = _shop_money(item.get("price_set"), item.get("price"))
            discount = sum(
                (
                    _shop_money(a.get("amount_set"), a.get("amount"))
                    for a in item.get("discount_allocations") or []
                ),
                Decimal(0),
            )
            pres_price = _presentment_money(item.get("price_set"), item.get("price"))
            pres_discount = sum(
                (
                    _presentment_money(a.get("amount_set"), a.get("amount"))
                    for a in item.get("discount_allocations") or []
                ),
                Decimal(0),
            )
            lines.append(
                Line(
                    line_id,
                    quantity,
                    price,
                    discount,
                    max(pres_price * quantity - pres_discount, Decimal(0)),
                    bool(item.get("gift_card")),
                )
            )
        customer = data.get("customer") if isinstance(data.get("customer"), Mapping) else None
        customer_id = None
        if customer and customer.get("id") is not None:
            try:
                customer_id = int(customer["id"])
            except (TypeError, ValueError):
                customer_id = None
        email = data.get("email") or data.get("contact_email") or (customer or {}).get("email")
        phone = (
            data.get("phone")
            or (customer or {}).get("phone")
            or (
                (data.get("shipping_address") or {}).get("phone")
                if isinstance(data.get("shipping_address"), Mapping)
                else None
            )
        )
        refunds = tuple(
            Refund.from_payload({**r, "order_id": r.get("order_id", order_id)})
            for r in data.get("refunds") or []
        )
        return cls(
            id=order_id,
            name=str(data.get("name") or f"#{order_id}")[:64],
            updated_at=parse_ts(data.get("updated_at")),
            created_at=parse_ts(data.get("created_at")),
            currency=currency,
            presentment_currency=str(data.get("presentment_currency") or currency).upper(),
            financial_status=str(data.get("financial_status") or "pending"),
            cancelled_at=parse_ts(data.get("cancelled_at")),
            test=bool(data.get("test")),
            codes=tuple(codes.items()),
            lines=tuple(lines),
            customer_id=customer_id,
            customer_created_at=parse_ts((customer or {}).get("created_at")),
            email=normalise_email(email),
            phone=normalise_phone(phone),
            address=address_key(data.get("shipping_address")),
            refunds=refunds,
        )

    @property
    def paid(self) -> bool:
        """Money was taken (a refund later does not undo that the order was paid)."""
        return self.financial_status in {"paid", "partially_refunded", "refunded", "partially_paid"}


#: How far an order has moved through its payment life; Shopify only moves it forward.
_FINANCIAL_PROGRESS = {
    "pending": 0,
    "authorized": 1,
    "partially_paid": 2,
    "paid": 3,
    "partially_refunded": 4,
    "refunded": 5,
    "voided": 6,
}


def supersedes(new: Order, current: Order) -> bool:
    """Whether ``new`` replaces ``current`` as the order's known state.

    The later ``updated_at`` wins (a version without one never replaces a stored one).
    ``updated_at`` has one-second precision, so two versions can carry the same one; then the
    one further along wins (cancelled, then payment progress), and a full tie goes to the
    later arrival. So a stale version delivered late cannot undo a cancellation or a payment
    made within the same second.
    """
    if new.updated_at is None:
        return False
    if current.updated_at is None or new.updated_at > current.updated_at:
        return True
    if new.updated_at < current.updated_at:
        return False
    return _progress(new) >= _progress(current)


def _progress(order: Order) -> tuple[bool, int]:
    return order.cancelled_at is not None, _FINANCIAL_PROGRESS.get(order.financial_status, 0)
