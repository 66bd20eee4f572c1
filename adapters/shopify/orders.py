"""``OrderSource`` for Shopify: orders updated in a time window, read through Admin GraphQL and
returned in the REST shape of webhook bodies, so one parser (``Order.from_payload``) reads what
webhooks bring and what reconciliation finds.

Pages are sorted by ``UPDATED_AT`` with opaque cursors (stable when orders change while we page)
and paced by :class:`ShopifyGraphQLClient` from the shop's ``throttleStatus``: every call passes
the cost it will request, so the client waits for the bucket instead of being throttled.

Nested lists are read a few items at a time in the page query (their *requested* cost is
multiplied by the page size), and an order that has more (lines, refunds, refund lines) is
completed with follow-up queries of its own, so a big order is never truncated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.shopify.graphql import ShopifyGraphQLClient

# --- what a page asks for, and what that costs ------------------------------------------------

LINES_FIRST = 10  # line items read with the order; more are paged with ORDER_LINE_ITEMS
REFUNDS_FIRST = 2  # refunds read with the order; all of them are listed when it has this many
REFUND_LINES_FIRST = 5  # lines per refund read with the order; more are paged with REFUND

# Requested cost of one order node, by Shopify's rules (an object field costs 1 plus its
# selection, a scalar 0, a connection 2 + first × node, a plain list is sized 1; the emulator
# applies the same rules and a unit test checks this figure against it):
#   order 1 + customer {… defaultEmailAddress, defaultPhoneNumber} 3 + shippingAddress 1
#   + lineItems: 2 + 10 × (line 1 + originalUnitPriceSet 3
#                          + discountAllocations 1 × (1 + allocatedAmountSet 3
#                                                      + discountApplication 1)) = 2 + 10 × 9 = 92
#   + refunds: 2 × (refund 1 + refundLineItems: 2 + 5 × (1 + lineItem 1 + subtotalSet 2)) = 46
#   = 5 + 92 + 46 = 143
LINE_COST = 9
REFUND_LINE_COST = 4
ORDER_COST = 5 + (2 + LINES_FIRST * LINE_COST) + REFUNDS_FIRST * (
    1 + 2 + REFUND_LINES_FIRST * REFUND_LINE_COST
)
# A query may request at most 1,000 points. Staying at ~3/4 of that leaves room for Shopify
# pricing a field a little differently than we estimate, and keeps one page from needing most of
# a Standard plan's 2,000-point bucket (the difference to the actual cost is refunded anyway).
PAGE_BUDGET = 750
MAX_PAGE_SIZE = (PAGE_BUDGET - 2) // ORDER_COST  # = 5 orders: 2 + 5 × 143 = 717 points


def page_cost(page_size: int) -> int:
    """The requested cost of one page of ``page_size`` orders."""
    return 2 + page_size * ORDER_COST


LINE_FIELDS = """
fragment ReconciledLine on LineItem {
  id
  quantity
  isGiftCard
  originalUnitPriceSet {
    shopMoney { amount currencyCode }
    presentmentMoney { amount currencyCode }
  }
  discountAllocations {
    allocatedAmountSet {
      shopMoney { amount currencyCode }
      presentmentMoney { amount currencyCode }
    }
    discountApplication { index ... on DiscountCodeApplication { code } }
  }
}
"""

REFUND_LINE_FIELDS = """
fragment ReconciledRefundLine on RefundLineItem {
  quantity
  lineItem { id }
  subtotalSet { shopMoney { amount currencyCode } }
}
"""

ORDER_FIELDS = f"""
fragment ReconciledOrder on Order {{
  id
  legacyResourceId
  name
  createdAt
  updatedAt
  cancelledAt
  test
  email
  phone
  currencyCode
  presentmentCurrencyCode
  displayFinancialStatus
  discountCodes
  customer {{
    legacyResourceId
    createdAt
    defaultEmailAddress {{ emailAddress }}
    defaultPhoneNumber {{ phoneNumber }}
  }}
  shippingAddress {{ address1 zip phone }}
  lineItems(first: {LINES_FIRST}) {{
    nodes {{ ...ReconciledLine }}
    pageInfo {{ hasNextPage endCursor }}
  }}
  refunds(first: {REFUNDS_FIRST}) {{
    id
    legacyResourceId
    createdAt
    refundLineItems(first: {REFUND_LINES_FIRST}) {{
      nodes {{ ...ReconciledRefundLine }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
{LINE_FIELDS}
{REFUND_LINE_FIELDS}
"""

ORDERS = f"""
query ReconcileOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    nodes {{ ...ReconciledOrder }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
{ORDER_FIELDS}
"""

ORDER = f"""
query ReconcileOrder($id: ID!) {{
  order(id: $id) {{ ...ReconciledOrder }}
}}
{ORDER_FIELDS}
"""

MORE_LINES_FIRST = 80  # 1 + 2 + 80 × 9 = 723 points
ORDER_LINE_ITEMS = f"""
query ReconcileOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: {MORE_LINES_FIRST}, after: $after) {{
      nodes {{ ...ReconciledLine }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
{LINE_FIELDS}
"""

ALL_REFUNDS_FIRST = 250  # 1 + 250 × 1 = 251 points; no order has more refunds than that
ORDER_REFUND_IDS = f"""
query ReconcileOrderRefunds($id: ID!) {{
  order(id: $id) {{ refunds(first: {ALL_REFUNDS_FIRST}) {{ id }} }}
}}
"""

MORE_REFUND_LINES_FIRST = 150  # 1 + 2 + 150 × 4 = 603 points
REFUND = f"""
query ReconcileRefund($id: ID!, $after: String) {{
  node(id: $id) {{
    ... on Refund {{
      id
      legacyResourceId
      createdAt
      refundLineItems(first: {MORE_REFUND_LINES_FIRST}, after: $after) {{
        nodes {{ ...ReconciledRefundLine }}
        pageInfo {{ hasNextPage endCursor }}
      }}
    }}
  }}
}}
{REFUND_LINE_FIELDS}
"""

#: ``Order.displayFinancialStatus`` → the REST ``financial_status`` of webhook bodies.
FINANCIAL_STATUS = {
    "PENDING": "pending",
    "AUTHORIZED": "authorized",
    "PARTIALLY_PAID": "partially_paid",
    "PAID": "paid",
    "PARTIALLY_REFUNDED": "partially_refunded",
    "REFUNDED": "refunded",
    "VOIDED": "voided",
    "EXPIRED": "expired",
}


class ShopifyOrders:
    """Implements :class:`connector.ports.OrderSource` over the Admin GraphQL API."""

    def __init__(self, graphql: ShopifyGraphQLClient) -> None:
        self._gql = graphql

    def updated_since(
        self,
        shop_domain: str,
        access_token: str,
        since: datetime,
        page_size: int = MAX_PAGE_SIZE,
        *,
        until: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every order updated at or after ``since`` (and at or before ``until``), oldest update
        first, each complete (all lines, refunds and refund lines). ``page_size`` is capped at
        :data:`MAX_PAGE_SIZE`. Lazy: a page is read when the previous one has been consumed."""
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        query = f"updated_at:>='{search_time(since)}'"
        if until is not None:
            query += f" updated_at:<='{search_time(until)}'"
        after: str | None = None
        while True:
            page = self._gql.execute(
                shop_domain,
                access_token,
                ORDERS,
                {"first": size, "after": after, "query": query},
                estimated_cost=page_cost(size),
            ).data["orders"]
            for node in page["nodes"]:
                yield order_payload(self._complete(shop_domain, access_token, node))
            info = page["pageInfo"]
            if not info["hasNextPage"] or not info["endCursor"]:
                return
            after = info["endCursor"]

    def order(self, shop_domain: str, access_token: str, order_id: int) -> dict[str, Any] | None:
        """The order as Shopify has it now (complete), or None if it does not exist."""
        node = self._gql.execute(
            shop_domain,
            access_token,
            ORDER,
            {"id": f"gid://shopify/Order/{order_id}"},
            estimated_cost=ORDER_COST,
        ).data.get("order")
        return order_payload(self._complete(shop_domain, access_token, node)) if node else None

    # --- completing big orders ---------------------------------------------------------------

    def _complete(self, shop: str, token: str, node: dict[str, Any]) -> dict[str, Any]:
        """Read what the page query left out: lines past the first page, refunds past the
        first few, refund lines past the first few."""
        lines = node["lineItems"]
        while lines["pageInfo"]["hasNextPage"]:
            more = self._gql.execute(
                shop,
                token,
                ORDER_LINE_ITEMS,
                {"id": node["id"], "after": lines["pageInfo"]["endCursor"]},
                estimated_cost=3 + MORE_LINES_FIRST * LINE_COST,
            ).data["order"]["lineItems"]
            lines = {"nodes": [*lines["nodes"], *more["nodes"]], "pageInfo": more["pageInfo"]}
        refunds = list(node["refunds"])
        if len(refunds) >= REFUNDS_FIRST:
            listed = self._gql.execute(
                shop,
                token,
                ORDER_REFUND_IDS,
                {"id": node["id"]},
                estimated_cost=1 + ALL_REFUNDS_FIRST,
            ).data["order"]["refunds"]
            known = {r["id"] for r in refunds}
            refunds += [self._refund(shop, token, r["id"]) for r in listed if r["id"] not in known]
        refunds = [self._refund_lines(shop, token, r) for r in refunds]
        return {**node, "lineItems": lines, "refunds": refunds}

    def _refund(self, shop: str, token: str, refund_gid: str) -> dict[str, Any]:
        return self._refund_lines(
            shop,
            token,
            {"id": refund_gid, "refundLineItems": {"nodes": [], "pageInfo": {"hasNextPage": True}}},
        )

    def _refund_lines(self, shop: str, token: str, refund: dict[str, Any]) -> dict[str, Any]:
        lines = refund["refundLineItems"]
        while lines["pageInfo"]["hasNextPage"]:
            more = self._gql.execute(
                shop,
                token,
                REFUND,
                {"id": refund["id"], "after": lines["pageInfo"].get("endCursor")},
                estimated_cost=3 + MORE_REFUND_LINES_FIRST * REFUND_LINE_COST,
            ).data["node"]
            if not more:  # gone since the order was read: keep what we have
                break
            refund = {**refund, **{k: v for k, v in more.items() if k != "refundLineItems"}}
            page = more["refundLineItems"]
            lines = {"nodes": [*lines["nodes"], *page["nodes"]], "pageInfo": page["pageInfo"]}
        return {**refund, "refundLineItems": lines}


# --- GraphQL → the REST shape of webhook bodies ------------------------------------------------


def search_time(value: datetime) -> str:
    """A search-syntax timestamp: UTC, whole seconds (Shopify's timestamps have no fraction)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def legacy_id(gid: str) -> int:
    """``gid://shopify/LineItem/123`` → 123."""
    return int(str(gid).rsplit("/", 1)[-1])


def _money_set(bag: dict[str, Any] | None) -> dict[str, Any]:
    bag = bag or {}
    out: dict[str, Any] = {}
    for gql, rest in (("shopMoney", "shop_money"), ("presentmentMoney", "presentment_money")):
        money = bag.get(gql)
        if money:
            out[rest] = {"amount": str(money["amount"]), "currency_code": money.get("currencyCode")}
    return out


def _shop_amount(bag: dict[str, Any] | None) -> Decimal:
    return Decimal(str(((bag or {}).get("shopMoney") or {}).get("amount") or "0"))


def order_payload(node: dict[str, Any]) -> dict[str, Any]:
    """One GraphQL ``Order`` (as selected by ``ReconciledOrder``) as the REST order of a webhook
    body, with what ``Order.from_payload`` reads. Amounts stay decimal strings.

    ``discount_codes[].amount`` is what the code took off the line items, in shop currency (the
    sum of its line allocations); ambassador codes discount items, never shipping.
    """
    order_id = int(node["legacyResourceId"])
    code_amounts: dict[str, Decimal] = {}
    applications: dict[int, str] = {}
    line_items = []
    for line in node["lineItems"]["nodes"]:
        allocations = []
        for allocation in line.get("discountAllocations") or []:
            application = allocation.get("discountApplication") or {}
            code = application.get("code")
            index = application.get("index")
            if code:
                key = str(code).upper()
                code_amounts[key] = code_amounts.get(key, Decimal(0)) + _shop_amount(
                    allocation.get("allocatedAmountSet")
                )
                if index is not None:
                    applications.setdefault(int(index), str(code))
            amount_set = _money_set(allocation.get("allocatedAmountSet"))
            allocations.append(
                {
                    "amount": amount_set.get("shop_money", {}).get("amount", "0"),
                    "amount_set": amount_set,
                    "discount_application_index": index,
                }
            )
        price_set = _money_set(line.get("originalUnitPriceSet"))
        line_items.append(
            {
                "id": legacy_id(line["id"]),
                "admin_graphql_api_id": line["id"],
                "quantity": line["quantity"],
                "gift_card": bool(line.get("isGiftCard")),
                "price": price_set.get("shop_money", {}).get("amount", "0"),
                "price_set": price_set,
                "discount_allocations": allocations,
            }
        )
    codes = [str(c) for c in node.get("discountCodes") or []]
    seen = {c.upper() for c in codes}
    codes += [c for c in applications.values() if c.upper() not in seen]
    customer = node.get("customer")
    return {
        "id": order_id,
        "admin_graphql_api_id": node["id"],
        "name": node["name"],
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "test": bool(node.get("test")),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "currency": node["currencyCode"],
        "presentment_currency": node.get("presentmentCurrencyCode") or node["currencyCode"],
        "financial_status": financial_status(node.get("displayFinancialStatus")),
        "discount_codes": [
            {"code": code, "amount": str(code_amounts.get(code.upper(), Decimal(0)))}
            for code in codes
        ],
        "discount_applications": [
            {"type": "discount_code", "code": code, "index": index}
            for index, code in sorted(applications.items())
        ],
        "customer": {
            "id": int(customer["legacyResourceId"]),
            "created_at": customer.get("createdAt"),
            "email": (customer.get("defaultEmailAddress") or {}).get("emailAddress"),
            "phone": (customer.get("defaultPhoneNumber") or {}).get("phoneNumber"),
        }
        if customer
        else None,
        "shipping_address": dict(node["shippingAddress"]) if node.get("shippingAddress") else None,
        "line_items": line_items,
        "refunds": [_refund_payload(order_id, refund) for refund in node.get("refunds") or []],
    }


def _refund_payload(order_id: int, refund: dict[str, Any]) -> dict[str, Any]:
    lines = []
    for item in refund["refundLineItems"]["nodes"]:
        subtotal_set = _money_set(item.get("subtotalSet"))
        lines.append(
            {
                "line_item_id": legacy_id(item["lineItem"]["id"]),
                "quantity": item["quantity"],
                "subtotal": subtotal_set.get("shop_money", {}).get("amount", "0"),
                "subtotal_set": subtotal_set,
            }
        )
    return {
        "id": int(refund.get("legacyResourceId") or legacy_id(refund["id"])),
        "admin_graphql_api_id": refund["id"],
        "order_id": order_id,
        "created_at": refund.get("createdAt"),
        "refund_line_items": lines,
    }


def financial_status(display: str | None) -> str:
    """``PARTIALLY_REFUNDED`` → ``partially_refunded``; unknown values are lower-cased (the REST
    enum is the GraphQL one in lower case), a missing one is ``pending``."""
    if not display:
        return "pending"
    return FINANCIAL_STATUS.get(display, display.lower())
