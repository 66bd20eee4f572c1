"""What happens inside a shop: customers, discounts and codes, checkout, refunds, cancellations,
gift cards and store credit.

Every function here runs under the emulator's lock, changes the shop state and returns the
webhook events that Shopify would emit for the change (delivered by the caller once the lock is
released). Validation messages and codes follow Shopify's (``DiscountErrorCode``,
``GiftCardErrorCode``, ``StoreCreditAccountCreditUserErrorCode``) where the real API has them.

Checkout rules (as Shopify applies discount codes): a code matches an existing redeem code
case-insensitively; its discount must be active, under its usage limit, not already used by this
customer when ``appliesOncePerCustomer``, open to this customer (``context``), and the cart must
meet the minimum requirement. At most 5 codes, and several codes only if every discount combines
with order discounts. The order records each code as the buyer typed it. Percentages apply to
each line; a fixed amount is split across lines in proportion to their totals (``across``) or
taken off every unit (``appliesOnEachItem``: ``each``). No tax, no shipping charge.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from . import rest
from .state import (
    BulkCreation,
    Customer,
    Discount,
    DiscountApplication,
    GiftCard,
    Job,
    LineItem,
    Order,
    RedeemCode,
    Refund,
    RefundLine,
    Shop,
    StoreCreditAccount,
    StoreCreditTransaction,
    Transaction,
)
from .values import ZERO, IdSequence, cents, parse_datetime, parse_gid, to_decimal

MAX_CODES_PER_BULK_ADD = 250
MAX_CODES_PER_ORDER = 5
MAX_CODE_LENGTH = 255


class CommerceError(ValueError):
    """A request Shopify would refuse. ``status`` is the HTTP status the control API answers."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Event:
    """A webhook to emit: one merchant action shares one ``event_id`` across its topics."""

    topic: str
    payload: dict[str, Any]
    event_id: str


@dataclass
class Env:
    """Everything an operation needs: the shop, the id source, wall time and monotonic time."""

    shop: Shop
    ids: IdSequence
    now: datetime
    clock: float
    events: list[Event] = field(default_factory=list)
    _event_id: str | None = None

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        if self._event_id is None:
            self._event_id = str(uuid.uuid4())
        self.events.append(Event(topic, payload, self._event_id))


def user_error(
    field_path: Sequence[str] | None, message: str, code: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"field": list(field_path) if field_path else None, "message": message}
    if code is not None:
        error["code"] = code
        error["extraInfo"] = None
    return error


# --- customers ------------------------------------------------------------------------------


def normalize_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Shopify tags: comma-separated or a list, trimmed, non-empty, unique ignoring case."""
    if tags is None:
        return []
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    result: list[str] = []
    seen: set[str] = set()
    for raw in items:
        tag = str(raw).strip()
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            result.append(tag[:255])
    return result


def create_customer(
    env: Env,
    *,
    email: str | None,
    first_name: str | None = None,
    last_name: str | None = None,
    phone: str | None = None,
    tags: Iterable[str] | str | None = None,
    note: str | None = None,
    orders_count: int = 0,
    amount_spent: object = "0.00",
) -> Customer:
    shop = env.shop
    email = email.strip() if email else None
    if not (email or phone or first_name or last_name):
        raise CommerceError("Customer must have a name, phone number or email address")
    if email and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise CommerceError("Email is invalid", field="email")
    if email and shop.customer_by_email(email):
        raise CommerceError("Email has already been taken", field="email")
    if phone and any(c.phone == phone for c in shop.customers.values()):
        raise CommerceError("Phone has already been taken", field="phone")
    customer = Customer(
        id=env.ids.next(),
        email=email,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        tags=normalize_tags(tags),
        note=note,
        created_at=env.now,
        updated_at=env.now,
        orders_count=int(orders_count),
        amount_spent=cents(to_decimal(amount_spent, field="amount_spent")),
    )
    shop.customers[customer.id] = customer
    return customer


def change_tags(current: list[str], tags: Iterable[str], *, add: bool) -> list[str]:
    wanted = normalize_tags(tags)
    if add:
        return normalize_tags([*current, *wanted])
    drop = {tag.lower() for tag in wanted}
    return [tag for tag in current if tag.lower() not in drop]


# --- discounts ------------------------------------------------------------------------------


def _code_errors(shop: Shop, code: Any, field_path: list[str]) -> list[dict[str, Any]]:
    if not isinstance(code, str) or not code.strip():
        return [user_error(field_path, "Code can't be blank", "BLANK")]
    if len(code.strip()) > MAX_CODE_LENGTH:
        return [
            user_error(
                field_path,
                f"Code is too long (maximum is {MAX_CODE_LENGTH} characters)",
                "TOO_LONG",
            )
        ]
    if any(ch in code for ch in "\r\n"):
        return [user_error(field_path, "Code cannot contain newline characters.", "INVALID")]
    if shop.redeem_code(code) is not None:
        return [
            user_error(field_path, "Code must be unique. Please try a different code.", "TAKEN")
        ]
    return []


def register_code(env: Env, discount: Discount, code: str) -> RedeemCode:
    redeem = RedeemCode(env.ids.next(), code.strip(), discount.id, env.now)
    env.shop.redeem_codes[redeem.id] = redeem
    env.shop.code_index[redeem.code.upper()] = redeem.id
    discount.code_ids.append(redeem.id)
    return redeem


def create_basic_discount(
    env: Env, data: Mapping[str, Any]
) -> tuple[Discount | None, list[dict[str, Any]]]:
    """``discountCodeBasicCreate``: validate ``DiscountCodeBasicInput`` and create the discount
    with its first redeem code. Returns the discount or the user errors."""
    shop = env.shop
    root = "basicCodeDiscount"
    errors: list[dict[str, Any]] = []
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        errors.append(user_error([root, "title"], "Title can't be blank", "BLANK"))
    code = data.get("code")
    errors.extend(_code_errors(shop, code, [root, "code"]))

    starts_at = parse_datetime(data.get("startsAt")) if data.get("startsAt") else env.now
    ends_at = parse_datetime(data.get("endsAt")) if data.get("endsAt") else None
    if starts_at is None:
        errors.append(user_error([root, "startsAt"], "Starts at is invalid", "INVALID"))
        starts_at = env.now
    if data.get("endsAt") and ends_at is None:
        errors.append(user_error([root, "endsAt"], "Ends at is invalid", "INVALID"))
    if ends_at is not None and ends_at <= starts_at:
        errors.append(
            user_error(
                [root, "endsAt"],
                "Ends at needs to be after starts_at",
                "END_DATE_BEFORE_START_DATE",
            )
        )

    context_all, customer_ids = _parse_context(shop, data, root, errors)
    value = _parse_customer_gets(data.get("customerGets"), root, errors)
    minimum_subtotal, minimum_quantity = _parse_minimum(
        data.get("minimumRequirement"), root, errors
    )

    usage_limit = data.get("usageLimit")
    if usage_limit is not None and usage_limit <= 0:
        errors.append(
            user_error([root, "usageLimit"], "Usage limit must be greater than 0", "GREATER_THAN")
        )
    if errors or value is None:
        return None, errors

    combines = data.get("combinesWith") or {}
    discount = Discount(
        id=env.ids.next(),
        title=str(title).strip(),
        starts_at=starts_at,
        ends_at=ends_at,
        value_type=value[0],
        percentage=value[1],
        amount=value[2],
        applies_on_each_item=value[3],
        product_ids=value[4],
        context_all=context_all,
        customer_ids=customer_ids,
        minimum_subtotal=minimum_subtotal,
        minimum_quantity=minimum_quantity,
        usage_limit=usage_limit,
        applies_once_per_customer=bool(data.get("appliesOncePerCustomer")),
        combines_with={
            "productDiscounts": bool(combines.get("productDiscounts")),
            "orderDiscounts": bool(combines.get("orderDiscounts")),
            "shippingDiscounts": bool(combines.get("shippingDiscounts")),
        },
        tags=normalize_tags(data.get("tags")),
        created_at=env.now,
        updated_at=env.now,
    )
    shop.discounts[discount.id] = discount
    register_code(env, discount, str(code))
    return discount, []


def update_basic_discount(
    env: Env, discount: Discount | None, data: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``discountCodeBasicUpdate``: change what the input gives, keep the rest (codes too).
    ``minimumRequirement`` with both values null removes the minimum. Returns user errors;
    nothing changes when there are any."""
    root = "basicCodeDiscount"
    if discount is None:
        return [user_error(["id"], "Discount does not exist", "INVALID")]
    errors: list[dict[str, Any]] = []
    changes: dict[str, Any] = {}
    if "title" in data:
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            errors.append(user_error([root, "title"], "Title can't be blank", "BLANK"))
        else:
            changes["title"] = title.strip()
    if data.get("code") is not None:
        if len(discount.code_ids) > 1:
            errors.append(
                user_error(
                    [root, "code"],
                    "Code can't be changed on a discount with more than one code",
                    "INVALID",
                )
            )
        else:
            errors.extend(_code_errors(env.shop, data["code"], [root, "code"]))
    if "customerGets" in data:
        value = _parse_customer_gets(data.get("customerGets"), root, errors)
        if value is not None:
            changes.update(
                value_type=value[0],
                percentage=value[1],
                amount=value[2],
                applies_on_each_item=value[3],
                product_ids=value[4],
            )
    if "minimumRequirement" in data:
        subtotal, quantity = _parse_minimum(data.get("minimumRequirement"), root, errors)
        changes.update(minimum_subtotal=subtotal, minimum_quantity=quantity)
    if "appliesOncePerCustomer" in data:
        changes["applies_once_per_customer"] = bool(data.get("appliesOncePerCustomer"))
    if "usageLimit" in data:
        limit = data.get("usageLimit")
        if limit is not None and limit <= 0:
            errors.append(
                user_error(
                    [root, "usageLimit"], "Usage limit must be greater than 0", "GREATER_THAN"
                )
            )
        changes["usage_limit"] = limit
    if data.get("combinesWith") is not None:
        combines = dict(discount.combines_with)
        for key in ("productDiscounts", "orderDiscounts", "shippingDiscounts"):
            if data["combinesWith"].get(key) is not None:
                combines[key] = bool(data["combinesWith"][key])
        changes["combines_with"] = combines
    if errors:
        return errors
    for name, value in changes.items():
        setattr(discount, name, value)
    if data.get("code") is not None and discount.code_ids:
        redeem = env.shop.redeem_codes[discount.code_ids[0]]
        env.shop.code_index.pop(redeem.code.upper(), None)
        redeem.code = str(data["code"]).strip()
        env.shop.code_index[redeem.code.upper()] = redeem.id
    discount.updated_at = env.now
    return []


def _parse_context(
    shop: Shop, data: Mapping[str, Any], root: str, errors: list[dict[str, Any]]
) -> tuple[bool, set[int]]:
    context = data.get("context")
    if context is None and data.get("customerSelection") is not None:
        legacy = data["customerSelection"]  # deprecated shape: {all: true} | {customers: {add}}
        context = {"all": "ALL"} if legacy.get("all") else {"customers": legacy.get("customers")}
    if not context:
        errors.append(user_error([root, "context"], "Context can't be blank", "BLANK"))
        return True, set()
    if context.get("all"):
        return True, set()
    if context.get("customers") is not None:
        ids: set[int] = set()
        for raw in (context["customers"] or {}).get("add") or []:
            customer_id = parse_gid(raw, "Customer")
            if customer_id is None or customer_id not in shop.customers:
                errors.append(
                    user_error(
                        [root, "context", "customers", "add"], "Customer does not exist", "INVALID"
                    )
                )
            else:
                ids.add(customer_id)
        return False, ids
    errors.append(
        user_error(
            [root, "context"],
            "The emulator supports context.all and context.customers only",
            "INVALID",
        )
    )
    return True, set()


def _parse_customer_gets(
    gets: Mapping[str, Any] | None, root: str, errors: list[dict[str, Any]]
) -> tuple[Any, float | None, Decimal | None, bool, frozenset[int] | None] | None:
    path = [root, "customerGets"]
    if not gets or not gets.get("value"):
        errors.append(user_error([*path, "value"], "Value can't be blank", "BLANK"))
        return None
    items = gets.get("items") or {}
    products: frozenset[int] | None = None
    chosen = (items.get("products") or {}).get("productsToAdd") if not items.get("all") else None
    if chosen:
        numbers = [parse_gid(raw, "Product") for raw in chosen]
        if any(n is None for n in numbers):
            errors.append(
                user_error([*path, "items", "products"], "Product does not exist", "INVALID")
            )
            return None
        products = frozenset(n for n in numbers if n is not None)
    elif not items.get("all"):
        errors.append(
            user_error(
                [*path, "items"],
                "The emulator supports customerGets.items.all and items.products.productsToAdd",
                "INVALID",
            )
        )
        return None
    value = gets["value"]
    if value.get("percentage") is not None:
        percentage = float(value["percentage"])
        if not 0.0 < percentage <= 1.0:
            errors.append(
                user_error(
                    [*path, "value", "percentage"],
                    "Value must be between 0.0 and 1.0",
                    "VALUE_OUTSIDE_RANGE",
                )
            )
            return None
        return "percentage", percentage, None, False, products
    amount_input = value.get("discountAmount")
    if amount_input and amount_input.get("amount") is not None:
        try:
            amount = to_decimal(amount_input["amount"])
        except ValueError:
            amount = Decimal(-1)
        if amount <= 0:
            errors.append(
                user_error(
                    [*path, "value", "discountAmount", "amount"],
                    "Value must be greater than 0",
                    "GREATER_THAN",
                )
            )
            return None
        return (
            "fixed_amount",
            None,
            cents(amount),
            bool(amount_input.get("appliesOnEachItem")),
            products,
        )
    errors.append(
        user_error(
            [*path, "value"],
            "The emulator supports percentage and discountAmount values only",
            "INVALID",
        )
    )
    return None


def _parse_minimum(
    minimum: Mapping[str, Any] | None, root: str, errors: list[dict[str, Any]]
) -> tuple[Decimal | None, int | None]:
    if not minimum:
        return None, None
    subtotal = (minimum.get("subtotal") or {}).get("greaterThanOrEqualToSubtotal")
    quantity = (minimum.get("quantity") or {}).get("greaterThanOrEqualToQuantity")
    if subtotal is not None and quantity is not None:
        errors.append(
            user_error(
                [root, "minimumRequirement"],
                "Minimum subtotal and quantity range can't both be present",
                "MINIMUM_SUBTOTAL_AND_QUANTITY_RANGE_BOTH_PRESENT",
            )
        )
        return None, None
    return (
        cents(to_decimal(subtotal)) if subtotal is not None else None,
        int(quantity) if quantity is not None else None,
    )


def start_bulk_add(
    env: Env, discount_id: int | None, codes: Sequence[Mapping[str, Any]], delay: float
) -> tuple[BulkCreation | None, list[dict[str, Any]]]:
    """``discountRedeemCodeBulkAdd``: queue up to 250 codes; they are added after ``delay``."""
    discount = env.shop.discounts.get(discount_id) if discount_id is not None else None
    if discount is None:
        return None, [user_error(["discountId"], "Discount does not exist", "INVALID")]
    if not codes:
        return None, [user_error(["codes"], "Codes can't be blank", "BLANK")]
    if len(codes) > MAX_CODES_PER_BULK_ADD:
        message = f"Codes can't exceed {MAX_CODES_PER_BULK_ADD} per request"
        return None, [user_error(["codes"], message, "TOO_MANY_ARGUMENTS")]
    creation = BulkCreation(
        id=env.ids.next(),
        discount_id=discount.id,
        created_at=env.now,
        due_at=env.clock + delay,
        requested=[str(c.get("code", "")) for c in codes],
    )
    env.shop.bulk_creations[creation.id] = creation
    return creation, []


def start_bulk_delete(
    env: Env, discount_id: int | None, ids: Sequence[str] | None, search: str | None, delay: float
) -> tuple[Job | None, list[dict[str, Any]]]:
    """``discountCodeRedeemCodeBulkDelete``: delete codes by id or ``search`` (a code match)."""
    discount = env.shop.discounts.get(discount_id) if discount_id is not None else None
    if discount is None:
        return None, [user_error(["discountId"], "Discount does not exist", "INVALID")]
    if not ids and not search:
        return None, [
            user_error(
                None,
                "Only one of 'ids', 'search' or 'saved_search_id' is allowed.",
                "MISSING_ARGUMENT",
            )
        ]
    wanted: list[int] = []
    if ids:
        wanted = [i for i in (parse_gid(raw, "DiscountRedeemCode") for raw in ids) if i is not None]
    else:
        needle = (search or "").split(":", 1)[-1].strip().strip("'\"").upper()
        wanted = [
            code_id
            for code_id in discount.code_ids
            if env.shop.redeem_codes[code_id].code.upper() == needle
        ]
    job = Job(id=env.ids.next(), due_at=env.clock + delay, redeem_code_ids=wanted)
    env.shop.jobs[job.id] = job
    return job, []


def process_due_jobs(env: Env) -> None:
    """Finish asynchronous work whose time has come (codes added or deleted)."""
    shop = env.shop
    for creation in shop.bulk_creations.values():
        if creation.done or creation.due_at > env.clock:
            continue
        discount = shop.discounts.get(creation.discount_id)
        for code in creation.requested:
            errors = _code_errors(shop, code, ["code"]) if discount else []
            redeem = register_code(env, discount, code) if discount and not errors else None
            creation.results.append(
                {"code": code, "redeem_code_id": redeem.id if redeem else None, "errors": errors}
            )
        creation.done = True
    for job in shop.jobs.values():
        if job.done or job.due_at > env.clock:
            continue
        for code_id in job.redeem_code_ids:
            redeem = shop.redeem_codes.pop(code_id, None)
            if redeem is None:
                continue
            shop.code_index.pop(redeem.code.upper(), None)
            owner = shop.discounts.get(redeem.discount_id)
            if owner and code_id in owner.code_ids:
                owner.code_ids.remove(code_id)
        job.done = True


def set_discount_active(env: Env, discount: Discount, active: bool) -> None:
    """Deactivating ends the discount now (status EXPIRED); activating clears the end and starts
    it now if it was scheduled for later."""
    if active:
        discount.ends_at = None
        if discount.starts_at > env.now:
            discount.starts_at = env.now
    elif discount.status(env.now) != "EXPIRED":
        discount.ends_at = env.now
    discount.updated_at = env.now


# --- checkout -------------------------------------------------------------------------------


@dataclass
class _Applied:
    code: str
    discount: Discount
    redeem: RedeemCode


def checkout(
    env: Env,
    *,
    customer_email: str | None,
    line_items: Sequence[Mapping[str, Any]],
    discount_codes: Sequence[str] = (),
    currency: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    test: bool = False,
    shipping_address: dict[str, Any] | None = None,
    note: str | None = None,
) -> Order:
    """Place a paid order; emits ``orders/create`` and ``orders/paid`` (and ``customers/create``
    or ``customers/update``). Raises :class:`CommerceError` when Shopify's checkout would refuse."""
    shop = env.shop
    presentment = (currency or shop.currency).upper()
    if presentment == shop.currency:
        fx_rate = Decimal(1)
    elif presentment in shop.fx_rates:
        fx_rate = shop.fx_rates[presentment]
    else:
        raise CommerceError(
            f"Currency {presentment} is not enabled for this shop", field="currency"
        )
    lines = _parse_lines(env, line_items)
    email = customer_email.strip() if customer_email else None
    customer = shop.customer_by_email(email)
    applied = _resolve_codes(shop, env.now, discount_codes, email, customer, lines, fx_rate)

    applications = []
    for index, item in enumerate(applied):
        discount = item.discount
        if discount.value_type == "percentage":
            percent = Decimal(repr(discount.percentage)) * 100
            application = DiscountApplication(
                item.code, "percentage", percent, "across", product_ids=discount.product_ids
            )
        else:
            assert discount.amount is not None
            amount = cents(discount.amount / fx_rate)
            application = DiscountApplication(
                item.code,
                "fixed_amount",
                amount,
                "each" if discount.applies_on_each_item else "across",
                product_ids=discount.product_ids,
            )
        _allocate(application, index, lines)
        applications.append(application)

    created_customer = False
    if customer is None and email:
        customer = create_customer(env, email=email, first_name=first_name, last_name=last_name)
        created_customer = True
    shop.order_count += 1
    order = Order(
        id=env.ids.next(),
        number=shop.order_count,
        email=email,
        customer_id=customer.id if customer else None,
        shop_currency=shop.currency,
        presentment_currency=presentment,
        fx_rate=fx_rate,
        created_at=env.now,
        updated_at=env.now,
        line_items=lines,
        applications=applications,
        token=secrets.token_hex(16),
        test=test,
        note=note,
        shipping_address=shipping_address,
    )
    order.transactions.append(Transaction(env.ids.next(), "sale", order.total_price, env.now))
    shop.orders[order.id] = order

    for item in applied:
        item.discount.usage_count += 1
        item.redeem.usage_count += 1
        if email:
            item.discount.used_by.add(email.lower())
    body = rest.order_json(shop, order)
    env.emit("orders/create", body)
    env.emit("orders/paid", body)
    if customer is not None:
        customer.orders_count += 1
        customer.amount_spent += order.shop_amount(order.total_price)
        customer.last_order_id, customer.last_order_name = order.id, order.name
        customer.last_order_created_at = order.created_at
        customer.updated_at = env.now
        topic = "customers/create" if created_customer else "customers/update"
        env.emit(topic, rest.customer_json(shop, customer))
    return order


def _parse_lines(env: Env, line_items: Sequence[Mapping[str, Any]]) -> list[LineItem]:
    if not line_items:
        raise CommerceError("Cart is empty", field="line_items")
    lines = []
    for position, item in enumerate(line_items):
        try:
            price = cents(to_decimal(item.get("price"), field=f"line_items[{position}].price"))
            quantity = int(item.get("quantity", 1))
        except (TypeError, ValueError) as exc:
            raise CommerceError(str(exc), field="line_items") from exc
        if price < 0 or quantity < 1:
            raise CommerceError(
                "Line items need a price ≥ 0 and a quantity ≥ 1", field="line_items"
            )
        lines.append(
            LineItem(
                id=env.ids.next(),
                title=str(item.get("title") or "Item"),
                price=price,
                quantity=quantity,
                product_id=item.get("product_id"),
                variant_id=item.get("variant_id"),
                sku=item.get("sku"),
                variant_title=item.get("variant_title"),
            )
        )
    return lines


def _resolve_codes(
    shop: Shop,
    now: datetime,
    codes: Sequence[str],
    email: str | None,
    customer: Customer | None,
    lines: list[LineItem],
    fx_rate: Decimal,
) -> list[_Applied]:
    applied: list[_Applied] = []
    seen: set[str] = set()
    for raw in codes or ():
        code = str(raw).strip()
        if not code or code.upper() in seen:
            continue
        seen.add(code.upper())
        redeem = shop.redeem_code(code)
        if redeem is None:
            raise CommerceError(
                f"Enter a valid discount code ({code!r} does not exist)", field="discount_code"
            )
        discount = shop.discounts[redeem.discount_id]
        status = discount.status(now)
        if status != "ACTIVE":
            state = "has expired" if status == "EXPIRED" else "isn't active yet"
            raise CommerceError(f"Discount code {code!r} {state}", field="discount_code")
        if discount.usage_limit is not None and discount.usage_count >= discount.usage_limit:
            raise CommerceError(
                f"Discount code {code!r} usage limit has been reached", field="discount_code"
            )
        if discount.applies_once_per_customer:
            if not email:
                raise CommerceError(
                    f"Discount code {code!r} requires a customer email", field="discount_code"
                )
            if email.lower() in discount.used_by:
                raise CommerceError(
                    f"Discount code {code!r} has already been used", field="discount_code"
                )
        if not discount.context_all and (
            customer is None or customer.id not in discount.customer_ids
        ):
            raise CommerceError(
                f"Discount code {code!r} isn't valid for this customer", field="discount_code"
            )
        subtotal = sum((line.original_total for line in lines), ZERO) * fx_rate
        if discount.minimum_subtotal is not None and subtotal < discount.minimum_subtotal:
            raise CommerceError(
                f"Discount code {code!r} requires a minimum purchase of "
                f"{discount.minimum_subtotal}",
                field="discount_code",
            )
        quantity = sum(line.quantity for line in lines)
        if discount.minimum_quantity is not None and quantity < discount.minimum_quantity:
            raise CommerceError(
                f"Discount code {code!r} requires at least {discount.minimum_quantity} items",
                field="discount_code",
            )
        applied.append(_Applied(code, discount, redeem))
    if len(applied) > MAX_CODES_PER_ORDER:
        raise CommerceError(
            f"At most {MAX_CODES_PER_ORDER} discount codes per order", field="discount_code"
        )
    if len(applied) > 1 and not all(a.discount.combines_with["orderDiscounts"] for a in applied):
        raise CommerceError("These discount codes can't be combined", field="discount_code")
    return applied


def _allocate(application: DiscountApplication, index: int, lines: list[LineItem]) -> None:
    if application.product_ids is not None:  # customerGets.items.products: those lines only
        lines = [line for line in lines if line.product_id in application.product_ids]
        if not lines:
            return
    remaining = {line.id: line.discounted_total for line in lines}
    amounts: dict[int, Decimal] = {}
    if application.value_type == "percentage":
        for line in lines:
            amounts[line.id] = cents(line.original_total * application.value / 100)
    elif application.allocation_method == "each":
        for line in lines:
            amounts[line.id] = application.value * line.quantity
    else:
        base = sum(remaining.values(), ZERO)
        total = min(application.value, base)
        if base > 0:
            for line in lines:
                share = total * remaining[line.id] / base
                amounts[line.id] = share.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
            # Cents lost to rounding go to the largest line, as a merchant would see them.
            leftover = total - sum(amounts.values(), ZERO)
            largest = max(lines, key=lambda line: remaining[line.id])
            amounts[largest.id] += leftover
    for line in lines:
        amount = min(amounts.get(line.id, ZERO), remaining[line.id])
        if amount > 0:
            line.allocations.append((index, amount))
            application.amount += amount


# --- refunds and cancellations ----------------------------------------------------------------


def find_order(shop: Shop, order_id: object) -> Order:
    number = parse_gid(order_id, "Order")
    order = shop.orders.get(number) if number is not None else None
    if order is None:
        raise CommerceError(f"Order {order_id} not found", status=404)
    return order


def refund(
    env: Env,
    order: Order,
    line_items: Sequence[Mapping[str, Any]] | None,
    note: str | None = None,
) -> Refund:
    """Refund quantities of line items (all that is left when ``line_items`` is empty) at their
    discounted price; emits ``refunds/create`` and ``orders/updated``."""
    by_id = {line.id: line for line in order.line_items}
    wanted = list(line_items or [])
    if not wanted:
        wanted = [
            {"line_item_id": line.id, "quantity": line.current_quantity}
            for line in order.line_items
            if line.current_quantity
        ]
        if not wanted:
            raise CommerceError("Nothing left to refund on this order")
    refund_lines = []
    for item in wanted:
        line = by_id.get(parse_gid(item.get("line_item_id"), "LineItem") or -1)
        if line is None:
            raise CommerceError(
                f"Line item {item.get('line_item_id')} is not on this order",
                field="refund_line_items",
            )
        quantity = int(item.get("quantity", 0))
        if not 1 <= quantity <= line.current_quantity:
            raise CommerceError(
                f"Line item {line.id}: can refund 1 to {line.current_quantity}, not {quantity}",
                field="refund_line_items",
            )
        already = sum(
            (rl.subtotal for r in order.refunds for rl in r.lines if rl.line_item_id == line.id),
            ZERO,
        )
        if quantity == line.current_quantity:
            subtotal = line.discounted_total - already  # the last units take what rounding left
        else:
            subtotal = cents(line.discounted_total * quantity / line.quantity)
        refund_lines.append((line, quantity, subtotal))
    lines = []
    for line, quantity, subtotal in refund_lines:
        line.refunded_quantity += quantity
        lines.append(RefundLine(env.ids.next(), line.id, quantity, subtotal))
    amount = sum((rl.subtotal for rl in lines), ZERO)
    sale = order.transactions[0].id if order.transactions else None
    record = Refund(
        id=env.ids.next(),
        order_id=order.id,
        created_at=env.now,
        note=note,
        lines=lines,
        transactions=[Transaction(env.ids.next(), "refund", amount, env.now, parent_id=sale)],
    )
    order.refunds.append(record)
    order.updated_at = env.now
    customer = env.shop.customers.get(order.customer_id) if order.customer_id else None
    if customer is not None:
        customer.amount_spent -= order.shop_amount(amount)
        customer.updated_at = env.now
    env.emit("refunds/create", rest.refund_json(env.shop, order, record))
    env.emit("orders/updated", rest.order_json(env.shop, order))
    return record


def cancel(
    env: Env, order: Order, *, reason: str = "customer", restock_refund: bool = False
) -> None:
    """Cancel an order; emits ``orders/cancelled`` and ``orders/updated`` (and, with
    ``restock_refund``, a full refund first)."""
    if order.cancelled_at is not None:
        raise CommerceError("Order has already been cancelled")
    if restock_refund and any(line.current_quantity for line in order.line_items):
        refund(env, order, None, note="Order canceled")
    order.cancelled_at = env.now
    order.cancel_reason = reason
    order.updated_at = env.now
    body = rest.order_json(env.shop, order)
    env.emit("orders/cancelled", body)
    env.emit("orders/updated", body)


# --- gift cards and store credit ----------------------------------------------------------------


def create_gift_card(
    env: Env, data: Mapping[str, Any]
) -> tuple[GiftCard | None, str | None, list[dict[str, Any]]]:
    """``giftCardCreate``: ``initialAmount`` (or the deprecated ``initialValue``), optional
    ``code`` (8-20 letters/digits, unique), ``customerId``, ``note``, ``expiresOn``."""
    shop = env.shop
    errors: list[dict[str, Any]] = []
    currency = shop.currency
    raw_amount: Any = data.get("initialValue")
    if data.get("initialAmount"):
        raw_amount = data["initialAmount"].get("amount")
        currency = str(data["initialAmount"].get("currencyCode") or currency)
    try:
        amount = cents(to_decimal(raw_amount, field="initialValue"))
    except ValueError:
        amount = Decimal(-1)
    if amount <= 0:
        errors.append(
            user_error(
                ["input", "initialValue"], "Initial value must be greater than 0", "GREATER_THAN"
            )
        )
    if currency != shop.currency:
        errors.append(
            user_error(
                ["input", "initialAmount", "currencyCode"],
                "Currency must match the shop currency",
                "INVALID",
            )
        )
    code = data.get("code")
    if code is not None:
        code = str(code).replace(" ", "").replace("-", "")
        if len(code) < 8:
            errors.append(user_error(["input", "code"], "Code is too short", "TOO_SHORT"))
        elif len(code) > 20:
            errors.append(user_error(["input", "code"], "Code is too long", "TOO_LONG"))
        elif not code.isalnum():
            errors.append(user_error(["input", "code"], "Code is invalid", "INVALID"))
        elif any(card.code.upper() == code.upper() for card in shop.gift_cards.values()):
            errors.append(user_error(["input", "code"], "Code has already been taken", "TAKEN"))
    customer_id = None
    if data.get("customerId"):
        customer_id = parse_gid(data["customerId"], "Customer")
        if customer_id is None or customer_id not in shop.customers:
            errors.append(
                user_error(
                    ["input", "customerId"], "Customer could not be found", "CUSTOMER_NOT_FOUND"
                )
            )
    if errors:
        return None, None, errors
    full_code = (code or secrets.token_hex(8)).lower()
    expires = parse_datetime(data.get("expiresOn")) if data.get("expiresOn") else None
    card = GiftCard(
        id=env.ids.next(),
        code=full_code,
        initial_value=amount,
        balance=amount,
        currency=currency,
        customer_id=customer_id,
        note=data.get("note"),
        created_at=env.now,
        updated_at=env.now,
        expires_on=expires.date() if expires else None,
    )
    shop.gift_cards[card.id] = card
    return card, full_code, []


def credit_store_credit(
    env: Env, owner_or_account_id: str, credit: Mapping[str, Any]
) -> tuple[StoreCreditTransaction | None, StoreCreditAccount | None, list[dict[str, Any]]]:
    """``storeCreditAccountCredit``: ``id`` is a store credit account or its owner (a customer;
    the account for the credit's currency is created on first credit)."""
    shop = env.shop
    money = credit.get("creditAmount") or {}
    try:
        amount = cents(to_decimal(money.get("amount")))
    except ValueError:
        amount = Decimal(-1)
    currency = str(money.get("currencyCode") or "")
    path = ["creditInput", "creditAmount", "amount"]
    if amount <= 0:
        return (
            None,
            None,
            [
                user_error(
                    path,
                    "A positive amount must be used to credit a store credit account.",
                    "NEGATIVE_OR_ZERO_AMOUNT",
                )
            ],
        )
    account: StoreCreditAccount | None = None
    account_id = parse_gid(owner_or_account_id, "StoreCreditAccount")
    customer_id = parse_gid(owner_or_account_id, "Customer")
    if account_id is not None:
        account = shop.store_credit_accounts.get(account_id)
        if account is None:
            return (
                None,
                None,
                [user_error(["id"], "Store credit account does not exist", "ACCOUNT_NOT_FOUND")],
            )
    elif customer_id is not None and customer_id in shop.customers:
        account = next(
            (
                a
                for a in shop.store_credit_accounts.values()
                if a.customer_id == customer_id and a.currency == currency
            ),
            None,
        )
        if account is None:
            if currency != shop.currency:
                return (
                    None,
                    None,
                    [
                        user_error(
                            ["creditInput", "creditAmount", "currencyCode"],
                            "The currency provided is not supported.",
                            "UNSUPPORTED_CURRENCY",
                        )
                    ],
                )
            account = StoreCreditAccount(env.ids.next(), customer_id, currency)
            shop.store_credit_accounts[account.id] = account
    else:
        return None, None, [user_error(["id"], "Owner does not exist", "OWNER_NOT_FOUND")]
    if account.currency != currency:
        return (
            None,
            None,
            [
                user_error(
                    ["creditInput", "creditAmount", "currencyCode"],
                    "The currency provided does not match the currency of the store credit "
                    "account.",
                    "MISMATCHING_CURRENCY",
                )
            ],
        )
    expires_at = parse_datetime(credit.get("expiresAt")) if credit.get("expiresAt") else None
    if expires_at is not None and expires_at <= env.now:
        return (
            None,
            None,
            [
                user_error(
                    ["creditInput", "expiresAt"],
                    "The expiry date must be in the future.",
                    "EXPIRES_AT_IN_PAST",
                )
            ],
        )
    account.balance += amount
    txn = StoreCreditTransaction(env.ids.next(), amount, account.balance, env.now, expires_at)
    account.transactions.append(txn)
    return txn, account, []
