"""GraphQL object views over the emulator's state.

A view is a dict from GraphQL field name to a value or to a resolver ``(info, **args)``; the
executor's field resolver reads it (see :mod:`.graphql_api`). ``__typename`` picks the concrete
type for interfaces and unions (``Node``, ``DiscountCode``, ``PricingValue``…). A field a view does
not list is answered with a GraphQL error naming it ("emulator does not implement Type.field"),
never with a made-up value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from graphql import GraphQLError

from .commerce import Env
from .cost import plan_limits
from .oauth import AccessToken
from .search import matches, paginate
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
    WebhookSubscription,
)
from .values import ZERO, cents, gid, gid_type, gql_datetime, money_v2, parse_gid
from .webhooks import topic_to_enum

View = dict[str, Any]


@dataclass
class GqlContext:
    """Per-request context of the Admin GraphQL executor."""

    env: Env
    token: AccessToken
    api_key: str
    api_version: str
    bulk_delay: float
    bulk: Any = None  # the emulator's bulk-operation settings (:class:`.bulk.BulkSettings`)

    @property
    def shop(self) -> Shop:
        return self.env.shop

    @property
    def now(self) -> datetime:
        return self.env.now


# --- money -----------------------------------------------------------------------------------


def order_money(order: Order, amount: Decimal) -> View:
    return {
        "__typename": "MoneyBag",
        "shopMoney": money_v2(order.shop_amount(amount), order.shop_currency),
        "presentmentMoney": money_v2(cents(amount), order.presentment_currency),
    }


def shop_money(amount: Decimal, currency: str) -> View:
    return {
        "__typename": "MoneyBag",
        "shopMoney": money_v2(amount, currency),
        "presentmentMoney": money_v2(amount, currency),
    }


def _money(amount: Decimal, currency: str) -> View:
    return {"__typename": "MoneyV2", **money_v2(amount, currency)}


# --- shop ------------------------------------------------------------------------------------


def shop_view(ctx: GqlContext) -> View:
    shop = ctx.shop
    limits = plan_limits(shop.plan)
    offset = ctx.now.astimezone(shop.tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    return {
        "__typename": "Shop",
        "id": gid("Shop", shop.id),
        "name": shop.name,
        "myshopifyDomain": shop.domain,
        "email": shop.email,
        "contactEmail": shop.email,
        "shopOwnerName": shop.name,
        "currencyCode": shop.currency,
        "enabledPresentmentCurrencies": [shop.currency, *sorted(shop.fx_rates)],
        "ianaTimezone": shop.iana_timezone,
        "timezoneAbbreviation": ctx.now.astimezone(shop.tz).tzname() or "UTC",
        "timezoneOffset": f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}",
        "timezoneOffsetMinutes": minutes,
        "createdAt": gql_datetime(shop.created_at),
        "updatedAt": gql_datetime(shop.created_at),
        "description": None,
        "url": f"https://{shop.domain}",
        "primaryDomain": {
            "__typename": "Domain",
            "id": gid("Domain", shop.id),
            "host": shop.domain,
            "url": f"https://{shop.domain}",
            "sslEnabled": True,
        },
        "plan": {
            "__typename": "ShopPlan",
            "displayName": limits.display_name,
            "publicDisplayName": limits.display_name,
            "partnerDevelopment": limits.partner_development,
            "shopifyPlus": limits.shopify_plus,
        },
        "taxesIncluded": False,
        "taxShipping": False,
        "setupRequired": False,
        "checkoutApiSupported": True,
        "weightUnit": "KILOGRAMS",
    }


def app_installation_view(ctx: GqlContext) -> View:
    scopes = [s.strip() for s in ctx.token.scope.split(",") if s.strip()]
    return {
        "__typename": "AppInstallation",
        "id": gid("AppInstallation", ctx.shop.id),
        "accessScopes": [
            {"__typename": "AccessScope", "handle": s, "description": s} for s in scopes
        ],
        "launchUrl": f"https://{ctx.shop.domain}/admin/apps/{ctx.api_key}",
        "uninstallUrl": None,
        "activeSubscriptions": [],
    }


# --- customers -------------------------------------------------------------------------------

CUSTOMER_FIELDS: dict[str, Callable[[Customer], Any]] = {
    "id": lambda c: c.id,
    "customer_id": lambda c: c.id,
    "email": lambda c: c.email,
    "first_name": lambda c: c.first_name,
    "last_name": lambda c: c.last_name,
    "phone": lambda c: c.phone,
    "tag": lambda c: c.tags,
    "created_at": lambda c: c.created_at,
    "updated_at": lambda c: c.updated_at,
    "orders_count": lambda c: c.orders_count,
    "number_of_orders": lambda c: c.orders_count,
    "amount_spent": lambda c: c.amount_spent,
    "total_spent": lambda c: c.amount_spent,
    "state": lambda c: c.state,
}

CUSTOMER_SORT_KEYS: dict[str, Callable[[Customer], Any]] = {
    "ID": lambda c: c.id,
    "CREATED_AT": lambda c: c.created_at,
    "UPDATED_AT": lambda c: c.updated_at,
    "NAME": lambda c: c.display_name,
    "RELEVANCE": lambda c: c.id,
    "LOCATION": lambda c: c.id,
}


def customer_text(c: Customer) -> list[str]:
    return [c.email or "", c.first_name or "", c.last_name or "", c.phone or "", *c.tags]


def filter_customers(customers: list[Customer], query: str | None) -> list[Customer]:
    query = (query or "").replace("tag_not:", "-tag:")  # Shopify's alias for a negated tag
    return [c for c in customers if matches(c, query, CUSTOMER_FIELDS, customer_text)]


def customer_view(ctx: GqlContext, c: Customer) -> View:
    shop = ctx.shop

    def last_order(info: Any) -> View | None:
        order = shop.orders.get(c.last_order_id) if c.last_order_id else None
        return order_view(ctx, order) if order else None

    def orders(info: Any, **args: Any) -> View:
        own = [o for o in shop.orders.values() if o.customer_id == c.id]
        return orders_connection(ctx, own, args)

    def store_credit_accounts(info: Any, **args: Any) -> View:
        accounts = [a for a in shop.store_credit_accounts.values() if a.customer_id == c.id]
        return paginate(
            accounts,
            args,
            item_id=lambda a: a.id,
            sort_keys={"ID": lambda a: a.id},
            view=lambda a: store_credit_account_view(ctx, a),
        )

    return {
        "__typename": "Customer",
        "id": gid("Customer", c.id),
        "legacyResourceId": str(c.id),
        "firstName": c.first_name,
        "lastName": c.last_name,
        "displayName": c.display_name,
        "email": c.email,
        "phone": c.phone,
        "note": c.note,
        "tags": list(c.tags),
        "state": c.state.upper(),
        "verifiedEmail": c.verified_email,
        "taxExempt": False,
        "locale": "en",
        "canDelete": c.orders_count == 0,
        "createdAt": gql_datetime(c.created_at),
        "updatedAt": gql_datetime(c.updated_at),
        "numberOfOrders": str(c.orders_count),
        "amountSpent": _money(c.amount_spent, shop.currency),
        "defaultEmailAddress": {
            "__typename": "CustomerEmailAddress",
            "emailAddress": c.email,
            "marketingState": "NOT_SUBSCRIBED",
            "marketingOptInLevel": None,
            "marketingUpdatedAt": None,
            "validFormat": True,
        }
        if c.email
        else None,
        "defaultPhoneNumber": {"__typename": "CustomerPhoneNumber", "phoneNumber": c.phone}
        if c.phone
        else None,
        "defaultAddress": None,
        "lastOrder": last_order,
        "orders": orders,
        "storeCreditAccounts": store_credit_accounts,
    }


def customers_connection(ctx: GqlContext, customers: list[Customer], args: dict[str, Any]) -> View:
    return paginate(
        filter_customers(customers, args.get("query")),
        args,
        item_id=lambda c: c.id,
        sort_keys=CUSTOMER_SORT_KEYS,
        view=lambda c: customer_view(ctx, c),
    )


# --- orders ----------------------------------------------------------------------------------

ORDER_FIELDS: dict[str, Callable[[Order], Any]] = {
    "id": lambda o: o.id,
    "name": lambda o: o.name,
    "email": lambda o: o.email,
    "customer_id": lambda o: o.customer_id,
    "created_at": lambda o: o.created_at,
    "updated_at": lambda o: o.updated_at,
    "processed_at": lambda o: o.created_at,
    "financial_status": lambda o: o.financial_status,
    "discount_code": lambda o: o.discount_codes,
    "tag": lambda o: o.tags,
    "test": lambda o: o.test,
    "status": lambda o: ["any", "cancelled" if o.cancelled_at else "open"],
    "fulfillment_status": lambda o: "unshipped",
    "currency": lambda o: o.presentment_currency,
}

ORDER_SORT_KEYS: dict[str, Callable[[Order], Any]] = {
    "ID": lambda o: o.id,
    "CREATED_AT": lambda o: o.created_at,
    "UPDATED_AT": lambda o: o.updated_at,
    "PROCESSED_AT": lambda o: o.created_at,
    "ORDER_NUMBER": lambda o: o.number,
    "TOTAL_PRICE": lambda o: o.total_price,
    "CURRENT_TOTAL_PRICE": lambda o: o.current_total_price,
    "FINANCIAL_STATUS": lambda o: o.financial_status,
    "RELEVANCE": lambda o: o.id,
}


def orders_connection(ctx: GqlContext, orders: list[Order], args: dict[str, Any]) -> View:
    query = args.get("query")
    selected = [
        o for o in orders if matches(o, query, ORDER_FIELDS, lambda o: [o.name, o.email or ""])
    ]
    return paginate(
        selected,
        args,
        item_id=lambda o: o.id,
        sort_keys=ORDER_SORT_KEYS,
        view=lambda o: order_view(ctx, o),
    )


_FINANCIAL = {"paid": "PAID", "partially_refunded": "PARTIALLY_REFUNDED", "refunded": "REFUNDED"}


def order_view(ctx: GqlContext, o: Order) -> View:
    shop = ctx.shop

    def bag(amount: Decimal) -> View:
        return order_money(o, amount)

    def customer(info: Any) -> View | None:
        found = shop.customers.get(o.customer_id) if o.customer_id else None
        return customer_view(ctx, found) if found else None

    def line_items(info: Any, **args: Any) -> View:
        return paginate(
            o.line_items,
            {**args, "sortKey": None},
            item_id=lambda li: o.line_items.index(li),
            sort_keys={"ID": lambda li: o.line_items.index(li)},
            view=lambda li: line_item_view(ctx, o, li),
        )

    def refunds(info: Any, first: int | None = None) -> list[View]:
        views = [refund_view(ctx, o, r) for r in o.refunds]
        return views[:first] if first is not None else views

    def discount_applications(info: Any, **args: Any) -> View:
        indexed = list(enumerate(o.applications))
        return paginate(
            indexed,
            {**args, "sortKey": None},
            item_id=lambda pair: pair[0],
            sort_keys={"ID": lambda pair: pair[0]},
            view=lambda pair: discount_application_view(o, pair[0], pair[1]),
        )

    quantity = sum(li.quantity for li in o.line_items)
    return {
        "__typename": "Order",
        "id": gid("Order", o.id),
        "legacyResourceId": str(o.id),
        "name": o.name,
        "number": o.number,
        "confirmationNumber": o.token[:9].upper(),
        "createdAt": gql_datetime(o.created_at),
        "updatedAt": gql_datetime(o.updated_at),
        "processedAt": gql_datetime(o.created_at),
        "cancelledAt": gql_datetime(o.cancelled_at),
        "cancelReason": o.cancel_reason.upper() if o.cancel_reason else None,
        "closed": False,
        "closedAt": None,
        "confirmed": True,
        "test": o.test,
        "email": o.email,
        "phone": None,
        "note": o.note,
        "tags": list(o.tags),
        "sourceName": "web",
        "customerLocale": "en",
        "currencyCode": o.shop_currency,
        "presentmentCurrencyCode": o.presentment_currency,
        "discountCode": o.discount_codes[0] if o.discount_codes else None,
        "discountCodes": o.discount_codes,
        "displayFinancialStatus": _FINANCIAL[o.financial_status],
        "displayFulfillmentStatus": "UNFULFILLED",
        "fullyPaid": True,
        "unpaid": False,
        "refundable": o.current_total_price > 0,
        "capturable": False,
        "canMarkAsPaid": False,
        "requiresShipping": True,
        "taxesIncluded": False,
        "taxExempt": False,
        "estimatedTaxes": False,
        "dutiesIncluded": False,
        "edited": False,
        "paymentGatewayNames": ["bogus"],
        "subtotalLineItemsQuantity": quantity,
        "currentSubtotalLineItemsQuantity": sum(li.current_quantity for li in o.line_items),
        "totalWeight": "0",
        "statusPageUrl": f"https://{shop.domain}/{shop.id}/orders/{o.token}/authenticate",
        "totalPriceSet": bag(o.total_price),
        "originalTotalPriceSet": bag(o.total_price),
        "subtotalPriceSet": bag(o.subtotal_price),
        "totalDiscountsSet": bag(o.total_discounts),
        "cartDiscountAmountSet": bag(o.total_discounts),
        "totalTaxSet": bag(o.total_tax),
        "totalShippingPriceSet": bag(ZERO),
        "totalRefundedSet": bag(o.total_refunded),
        "totalRefundedShippingSet": bag(ZERO),
        "totalReceivedSet": bag(o.total_price),
        "netPaymentSet": bag(o.total_price - o.total_refunded),
        "totalOutstandingSet": bag(ZERO),
        "totalCapturableSet": bag(ZERO),
        "totalTipReceivedSet": bag(ZERO),
        "currentTotalPriceSet": bag(o.current_total_price),
        "currentSubtotalPriceSet": bag(o.current_subtotal_price),
        "currentTotalDiscountsSet": bag(o.current_total_discounts),
        "currentCartDiscountAmountSet": bag(o.current_total_discounts),
        "currentTotalTaxSet": bag(ZERO),
        "currentShippingPriceSet": bag(ZERO),
        "customer": customer,
        "lineItems": line_items,
        "refunds": refunds,
        "discountApplications": discount_applications,
        "shippingAddress": mailing_address_view(o.shipping_address),
        "billingAddress": mailing_address_view(o.shipping_address),
    }


def mailing_address_view(address: dict[str, Any] | None) -> View | None:
    if not address:
        return None
    return {
        "__typename": "MailingAddress",
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "zip": address.get("zip"),
        "province": address.get("province"),
        "provinceCode": address.get("province_code"),
        "country": address.get("country"),
        "countryCodeV2": address.get("country_code"),
        "firstName": address.get("first_name"),
        "lastName": address.get("last_name"),
        "name": address.get("name"),
        "phone": address.get("phone"),
        "company": address.get("company"),
    }


def discount_application_view(o: Order, index: int, a: DiscountApplication) -> View:
    if a.value_type == "percentage":
        value: View = {"__typename": "PricingPercentageValue", "percentage": float(a.value)}
    else:
        value = {"__typename": "MoneyV2", **money_v2(a.value, o.presentment_currency)}
    return {
        "__typename": "DiscountCodeApplication",
        "code": a.code,
        "index": index,
        "allocationMethod": a.allocation_method.upper(),
        "targetSelection": "ALL",
        "targetType": "LINE_ITEM",
        "value": value,
    }


def line_item_view(ctx: GqlContext, o: Order, li: LineItem) -> View:
    def bag(amount: Decimal) -> View:
        return order_money(o, amount)

    def discounted_total(info: Any, withCodeDiscounts: bool = False) -> View:
        # Shopify: code discounts are left out unless asked for (the argument's default).
        return bag(li.discounted_total if withCodeDiscounts else li.original_total)

    unit_after_all = cents(li.discounted_total / li.quantity) if li.quantity else ZERO
    remaining_share = (
        cents(li.discounted_total * li.current_quantity / li.quantity) if li.quantity else ZERO
    )
    return {
        "__typename": "LineItem",
        "id": gid("LineItem", li.id),
        "title": li.title,
        "name": f"{li.title} - {li.variant_title}" if li.variant_title else li.title,
        "variantTitle": li.variant_title,
        "sku": li.sku,
        "vendor": None,
        "quantity": li.quantity,
        "currentQuantity": li.current_quantity,
        "refundableQuantity": li.current_quantity,
        "unfulfilledQuantity": li.current_quantity,
        "nonFulfillableQuantity": li.refunded_quantity,
        "requiresShipping": True,
        "taxable": True,
        "isGiftCard": False,
        "merchantEditable": True,
        "restockable": True,
        "customAttributes": [],
        "duties": [],
        "taxLines": lambda info, first=None: [],
        "originalUnitPriceSet": bag(li.price),
        "originalTotalSet": bag(li.original_total),
        "discountedUnitPriceSet": bag(li.price),
        "discountedTotalSet": discounted_total,
        "discountedUnitPriceAfterAllDiscountsSet": bag(unit_after_all),
        "priceAfterAllDiscountsBeforeTaxesSet": bag(li.discounted_total),
        "totalDiscountSet": bag(li.discount_total),
        "unfulfilledDiscountedTotalSet": bag(remaining_share),
        "unfulfilledOriginalTotalSet": bag(li.price * li.current_quantity),
        "discountAllocations": [
            {
                "__typename": "DiscountAllocation",
                "allocatedAmountSet": bag(amount),
                "allocatedAmount": money_v2(amount, o.presentment_currency),
                "discountApplication": discount_application_view(o, index, o.applications[index]),
            }
            for index, amount in li.allocations
        ],
        "product": {
            "__typename": "Product",
            "id": gid("Product", li.product_id),
            "legacyResourceId": str(li.product_id),
            "title": li.title,
        }
        if li.product_id
        else None,
        "variant": {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", li.variant_id),
            "legacyResourceId": str(li.variant_id),
            "title": li.variant_title or "Default Title",
            "sku": li.sku,
        }
        if li.variant_id
        else None,
    }


def refund_view(ctx: GqlContext, o: Order, r: Refund) -> View:
    by_id = {li.id: li for li in o.line_items}

    def refund_line_items(info: Any, **args: Any) -> View:
        return paginate(
            r.lines,
            {**args, "sortKey": None},
            item_id=lambda rl: rl.id,
            sort_keys={"ID": lambda rl: rl.id},
            view=lambda rl: refund_line_view(ctx, o, by_id[rl.line_item_id], rl),
        )

    return {
        "__typename": "Refund",
        "id": gid("Refund", r.id),
        "legacyResourceId": str(r.id),
        "createdAt": gql_datetime(r.created_at),
        "updatedAt": gql_datetime(r.created_at),
        "processedAt": gql_datetime(r.created_at),
        "note": r.note,
        "totalRefundedSet": order_money(o, r.amount),
        "order": lambda info: order_view(ctx, o),
        "refundLineItems": refund_line_items,
        "duties": [],
        "return": None,
        "staffMember": None,
    }


def refund_line_view(ctx: GqlContext, o: Order, li: LineItem, rl: RefundLine) -> View:
    return {
        "__typename": "RefundLineItem",
        "id": gid("RefundLineItem", rl.id),
        "lineItem": line_item_view(ctx, o, li),
        "quantity": rl.quantity,
        "restockType": "NO_RESTOCK",
        "restocked": False,
        "location": None,
        "priceSet": order_money(o, li.price),
        "subtotalSet": order_money(o, rl.subtotal),
        "totalTaxSet": order_money(o, ZERO),
    }


# --- discounts -------------------------------------------------------------------------------


def redeem_code_view(r: RedeemCode) -> View:
    return {
        "__typename": "DiscountRedeemCode",
        "id": gid("DiscountRedeemCode", r.id),
        "code": r.code,
        "asyncUsageCount": r.usage_count,
        "createdBy": None,
    }


def discount_node_view(ctx: GqlContext, d: Discount, typename: str = "DiscountCodeNode") -> View:
    """A ``DiscountCodeNode`` (``codeDiscount``) or ``DiscountNode`` (``discount``); both carry
    the code discount's GID, as Shopify's do."""
    field_name = "discount" if typename == "DiscountNode" else "codeDiscount"
    return {
        "__typename": typename,
        "id": gid("DiscountCodeNode", d.id),
        field_name: lambda info: discount_basic_view(ctx, d),
    }


def discount_basic_view(ctx: GqlContext, d: Discount) -> View:
    shop = ctx.shop

    def codes(info: Any, **args: Any) -> View:
        redeem = [shop.redeem_codes[i] for i in d.code_ids if i in shop.redeem_codes]
        query = args.get("query")
        redeem = [
            r
            for r in redeem
            if matches(
                r, query, {"code": lambda x: x.code, "id": lambda x: x.id}, lambda x: [x.code]
            )
        ]
        return paginate(
            redeem,
            args,
            item_id=lambda r: r.id,
            sort_keys={
                "ID": lambda r: r.id,
                "CODE": lambda r: r.code,
                "CREATED_AT": lambda r: r.created_at,
                "RELEVANCE": lambda r: r.id,
            },
            view=redeem_code_view,
        )

    if d.value_type == "percentage":
        value: View = {"__typename": "DiscountPercentage", "percentage": d.percentage}
    else:
        assert d.amount is not None
        value = {
            "__typename": "DiscountAmount",
            "amount": _money(d.amount, shop.currency),
            "appliesOnEachItem": d.applies_on_each_item,
        }
    if d.context_all:
        context: View = {"__typename": "DiscountBuyerSelectionAll", "all": "ALL"}
    else:
        context = {
            "__typename": "DiscountCustomers",
            "customers": [
                customer_view(ctx, shop.customers[i])
                for i in sorted(d.customer_ids)
                if i in shop.customers
            ],
        }
    minimum: View | None = None
    if d.minimum_subtotal is not None:
        minimum = {
            "__typename": "DiscountMinimumSubtotal",
            "greaterThanOrEqualToSubtotal": _money(d.minimum_subtotal, shop.currency),
        }
    elif d.minimum_quantity is not None:
        minimum = {
            "__typename": "DiscountMinimumQuantity",
            "greaterThanOrEqualToQuantity": str(d.minimum_quantity),
        }
    summary = (
        f"{round((d.percentage or 0) * 100, 2):g}% off entire order"
        if d.value_type == "percentage"
        else f"{d.amount} {shop.currency} off entire order"
    )
    return {
        "__typename": "DiscountCodeBasic",
        "title": d.title,
        "status": d.status(ctx.now),
        "startsAt": gql_datetime(d.starts_at),
        "endsAt": gql_datetime(d.ends_at),
        "createdAt": gql_datetime(d.created_at),
        "updatedAt": gql_datetime(d.updated_at),
        "usageLimit": d.usage_limit,
        "asyncUsageCount": d.usage_count,
        "appliesOncePerCustomer": d.applies_once_per_customer,
        "recurringCycleLimit": None,
        "hasTimelineComment": False,
        "discountClasses": ["ORDER"],
        "tags": list(d.tags),
        "summary": summary,
        "shortSummary": summary,
        "codes": codes,
        "codesCount": {"__typename": "Count", "count": len(d.code_ids), "precision": "EXACT"},
        "combinesWith": {
            "__typename": "DiscountCombinesWith",
            **d.combines_with,
            "productDiscountsWithTagsOnSameCartLine": None,
        },
        "context": context,
        "customerGets": {
            "__typename": "DiscountCustomerGets",
            "value": value,
            "items": {"__typename": "AllDiscountItems", "allItems": True},
            "appliesOnOneTimePurchase": True,
            "appliesOnSubscription": False,
        },
        "minimumRequirement": minimum,
        "shareableUrls": [],
        "totalSales": None,
    }


def bulk_creation_view(ctx: GqlContext, b: BulkCreation) -> View:
    shop = ctx.shop

    def codes(info: Any, **args: Any) -> View:
        indexed = list(enumerate(b.results))
        return paginate(
            indexed,
            {**args, "sortKey": None},
            item_id=lambda pair: pair[0],
            sort_keys={"ID": lambda pair: pair[0]},
            view=lambda pair: {
                "__typename": "DiscountRedeemCodeBulkCreationCode",
                "code": pair[1]["code"],
                "errors": [{"__typename": "DiscountUserError", **e} for e in pair[1]["errors"]],
                "discountRedeemCode": redeem_code_view(shop.redeem_codes[pair[1]["redeem_code_id"]])
                if pair[1]["redeem_code_id"] in shop.redeem_codes
                else None,
            },
        )

    discount = shop.discounts.get(b.discount_id)
    failed = sum(1 for r in b.results if r["errors"])
    return {
        "__typename": "DiscountRedeemCodeBulkCreation",
        "id": gid("DiscountRedeemCodeBulkCreation", b.id),
        "createdAt": gql_datetime(b.created_at),
        "done": b.done,
        "codesCount": len(b.requested),
        "importedCount": len(b.results) - failed,
        "failedCount": failed,
        "codes": codes,
        "discountCode": lambda info: discount_node_view(ctx, discount) if discount else None,
    }


def job_view(j: Job) -> View:
    return {"__typename": "Job", "id": gid("Job", j.id), "done": j.done, "query": None}


# --- webhooks, gift cards, store credit ------------------------------------------------------


def webhook_subscription_view(s: WebhookSubscription) -> View:
    return {
        "__typename": "WebhookSubscription",
        "id": gid("WebhookSubscription", s.id),
        "legacyResourceId": str(s.id),
        "topic": topic_to_enum(s.topic),
        "uri": s.uri,
        "callbackUrl": s.uri,
        "format": s.format,
        "apiVersion": {
            "__typename": "ApiVersion",
            "handle": s.api_version,
            "displayName": s.api_version,
            "supported": True,
        },
        "includeFields": list(s.include_fields),
        "metafieldNamespaces": [],
        "metafields": [],
        "filter": s.filter,
        "name": s.name,
        "createdAt": gql_datetime(s.created_at),
        "updatedAt": gql_datetime(s.updated_at),
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": s.uri},
    }


GIFT_CARD_FIELDS: dict[str, Callable[[GiftCard], Any]] = {
    "id": lambda g: g.id,
    "customer_id": lambda g: g.customer_id,
    "created_at": lambda g: g.created_at,
    "updated_at": lambda g: g.updated_at,
    "initial_value": lambda g: g.initial_value,
    "balance": lambda g: g.balance,
    "status": lambda g: "enabled" if g.enabled else "disabled",
    "balance_status": lambda g: "full" if g.balance == g.initial_value else "partial",
}


def gift_card_view(ctx: GqlContext, g: GiftCard) -> View:
    shop = ctx.shop
    return {
        "__typename": "GiftCard",
        "id": gid("GiftCard", g.id),
        "balance": _money(g.balance, g.currency),
        "initialValue": _money(g.initial_value, g.currency),
        "lastCharacters": g.code[-4:],
        "maskedCode": "•••• •••• •••• " + g.code[-4:],
        "note": g.note,
        "enabled": g.enabled,
        "isRedeemable": g.enabled and g.balance > 0,
        "deactivatedAt": None,
        "expiresOn": g.expires_on.isoformat() if g.expires_on else None,
        "createdAt": gql_datetime(g.created_at),
        "updatedAt": gql_datetime(g.updated_at),
        "templateSuffix": None,
        "order": None,
        "lineItem": None,
        "recipientAttributes": None,
        "customer": lambda info: (
            customer_view(ctx, shop.customers[g.customer_id])
            if g.customer_id in shop.customers
            else None
        ),
    }


def store_credit_account_view(ctx: GqlContext, a: StoreCreditAccount) -> View:
    shop = ctx.shop

    def transactions(info: Any, **args: Any) -> View:
        return paginate(
            a.transactions,
            args,
            item_id=lambda t: t.id,
            sort_keys={"ID": lambda t: t.id, "CREATED_AT": lambda t: t.created_at},
            view=lambda t: store_credit_txn_view(ctx, a, t),
        )

    return {
        "__typename": "StoreCreditAccount",
        "id": gid("StoreCreditAccount", a.id),
        "balance": _money(a.balance, a.currency),
        "owner": lambda info: (
            customer_view(ctx, shop.customers[a.customer_id])
            if a.customer_id in shop.customers
            else None
        ),
        "transactions": transactions,
    }


def store_credit_txn_view(
    ctx: GqlContext, a: StoreCreditAccount, t: StoreCreditTransaction
) -> View:
    return {
        "__typename": "StoreCreditAccountCreditTransaction",
        "id": gid("StoreCreditAccountCreditTransaction", t.id),
        "amount": _money(t.amount, a.currency),
        "balanceAfterTransaction": _money(t.balance_after, a.currency),
        "remainingAmount": _money(t.amount, a.currency),
        "createdAt": gql_datetime(t.created_at),
        "expiresAt": gql_datetime(t.expires_at),
        "event": "ADJUSTMENT",
        "origin": None,
        "account": lambda info: store_credit_account_view(ctx, a),
    }


# --- Node lookup -----------------------------------------------------------------------------

#: ``node(id:)`` views of types kept by other modules (e.g. ``BulkOperation`` by :mod:`.bulk`):
#: GID type → ``(ctx, number) -> view or None``.
NODE_VIEWS: dict[str, Callable[[GqlContext, int], View | None]] = {}


def node_view(ctx: GqlContext, global_id: str) -> View | None:
    """``node(id:)``: resolve any GID the emulator stores; ``None`` when unknown."""
    shop = ctx.shop
    kind = gid_type(global_id)
    number = parse_gid(global_id, kind) if kind else None
    if kind is None or number is None:
        raise GraphQLError(f"Invalid global id '{global_id}'")
    if kind == "Customer" and number in shop.customers:
        return customer_view(ctx, shop.customers[number])
    if kind == "Order" and number in shop.orders:
        return order_view(ctx, shop.orders[number])
    if kind == "DiscountCodeNode" and number in shop.discounts:
        return discount_node_view(ctx, shop.discounts[number])
    if kind == "DiscountRedeemCodeBulkCreation" and number in shop.bulk_creations:
        return bulk_creation_view(ctx, shop.bulk_creations[number])
    if kind == "WebhookSubscription" and number in shop.webhook_subscriptions:
        return webhook_subscription_view(shop.webhook_subscriptions[number])
    if kind == "GiftCard" and number in shop.gift_cards:
        return gift_card_view(ctx, shop.gift_cards[number])
    if kind == "StoreCreditAccount" and number in shop.store_credit_accounts:
        return store_credit_account_view(ctx, shop.store_credit_accounts[number])
    if kind == "Shop" and number == shop.id:
        return shop_view(ctx)
    if kind in NODE_VIEWS:
        return NODE_VIEWS[kind](ctx, number)
    if kind == "Refund":
        for order in shop.orders.values():
            for refund in order.refunds:
                if refund.id == number:
                    return refund_view(ctx, order, refund)
    if kind == "LineItem":
        for order in shop.orders.values():
            for line in order.line_items:
                if line.id == number:
                    return line_item_view(ctx, order, line)
    return None
