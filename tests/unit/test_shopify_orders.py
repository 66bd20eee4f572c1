"""The reconciliation adapter: GraphQL orders → the REST shape of webhook bodies, the cost of
what it asks, and how it pages and completes big orders (offline: a recorded page, a fake
client)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from graphql import (
    FragmentDefinitionNode,
    NoDeprecatedCustomRule,
    OperationDefinitionNode,
    parse,
    specified_rules,
    validate,
)

from adapters.shopify import orders as shopify_orders
from adapters.shopify.emulator.admin_schema import admin_schema
from adapters.shopify.emulator.cost import MAX_QUERY_COST, QueryCost
from adapters.shopify.graphql import GraphQLResponse
from adapters.shopify.orders import (
    MAX_PAGE_SIZE,
    ORDER_COST,
    PAGE_BUDGET,
    ShopifyOrders,
    financial_status,
    order_payload,
    page_cost,
)
from connector.domain.orders import Order
from tests.conftest import FIXTURES


def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (FIXTURES / "shopify" / "graphql_reconcile_orders_page.json").read_text()
    )
    return data


def test_a_recorded_graphql_order_reads_as_the_same_order_as_its_webhook_body() -> None:
    page = recorded()
    node = page["graphql_response"]["data"]["orders"]["nodes"][0]
    payload = order_payload(node)
    order = Order.from_payload(payload)

    assert order == Order.from_payload(page["webhook_body"])
    assert payload["id"] == 7300000000010 and isinstance(payload["id"], int)
    assert (order.currency, order.presentment_currency) == ("USD", "EUR")
    assert order.financial_status == "partially_refunded" and order.paid
    # both codes, in the order applied, with what each took off the lines in shop money:
    # 10 % of €275.50 is €27.55, allocated per line as $30.31; $5.00 off is €4.55, as $5.01
    assert order.codes == (("AVAM", Decimal("30.31")), ("FIVEOFF", Decimal("5.01")))
    shell = order.lines[0]
    assert (shell.quantity, shell.price, shell.discount) == (2, Decimal("110.0"), Decimal("25.64"))
    assert shell.presentment_paid == Decimal("176.69")  # 2 × 100.00 − 20.00 − 3.31 (EUR)
    assert order.email == "friend.buyer@example.com" and order.address is not None
    assert order.customer_id == 7300000000009
    assert [(r.id, r.lines) for r in order.refunds] == [
        (7300000000013, ((7300000000007, 1, Decimal("19.44")),)),
        (7300000000016, ((7300000000008, 1, Decimal("15.07")),)),
    ]
    assert all(isinstance(line["price"], str) for line in payload["line_items"])  # no floats


@pytest.mark.parametrize(
    ("display", "rest"),
    [
        ("PAID", "paid"),
        ("PARTIALLY_REFUNDED", "partially_refunded"),
        ("REFUNDED", "refunded"),
        ("PENDING", "pending"),
        ("PARTIALLY_PAID", "partially_paid"),
        ("AUTHORIZED", "authorized"),
        ("VOIDED", "voided"),
        ("EXPIRED", "expired"),
        ("SOMETHING_NEW", "something_new"),
        (None, "pending"),
    ],
)
def test_display_financial_status_reads_as_the_rest_financial_status(
    display: str | None, rest: str
) -> None:
    assert financial_status(display) == rest


def test_every_enum_value_of_the_schema_is_mapped() -> None:
    enum = admin_schema().get_type("OrderDisplayFinancialStatus")
    assert set(enum.values) == set(shopify_orders.FINANCIAL_STATUS)  # type: ignore[union-attr]


DOCUMENTS = {
    "ORDERS": (shopify_orders.ORDERS, {"first": MAX_PAGE_SIZE}, page_cost(MAX_PAGE_SIZE)),
    "ORDER": (shopify_orders.ORDER, {}, ORDER_COST),
    "ORDER_LINE_ITEMS": (shopify_orders.ORDER_LINE_ITEMS, {}, 723),
    "ORDER_REFUND_IDS": (shopify_orders.ORDER_REFUND_IDS, {}, 251),
    "REFUND": (shopify_orders.REFUND, {}, 603),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_documents_are_valid_current_and_cost_what_is_passed_to_the_client(name: str) -> None:
    document, variables, estimated = DOCUMENTS[name]
    schema = admin_schema()
    parsed = parse(document)
    errors = validate(schema, parsed, (*specified_rules, NoDeprecatedCustomRule))
    assert errors == [], [e.message for e in errors]
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    requested = QueryCost(schema, operation, fragments, variables).requested()
    assert requested == estimated
    assert requested < MAX_QUERY_COST


def test_a_page_stays_well_under_the_cost_a_query_may_request() -> None:
    assert page_cost(MAX_PAGE_SIZE) <= PAGE_BUDGET < MAX_QUERY_COST
    assert page_cost(MAX_PAGE_SIZE + 1) > PAGE_BUDGET  # and is as big as the budget allows


# --- paging and completing big orders, against a scripted client -----------------------------


def money(amount: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": amount, "currencyCode": "USD"},
            "presentmentMoney": {"amount": amount, "currencyCode": "USD"}}


def line(n: int) -> dict[str, Any]:
    return {"id": f"gid://shopify/LineItem/{n}", "quantity": 1, "isGiftCard": False,
            "originalUnitPriceSet": money("10.00"), "discountAllocations": []}


def refund_line(n: int) -> dict[str, Any]:
    return {"quantity": 1, "lineItem": {"id": f"gid://shopify/LineItem/{n}"},
            "subtotalSet": {"shopMoney": {"amount": "10.00", "currencyCode": "USD"}}}


def connection(nodes: list[Any], cursor: str | None) -> dict[str, Any]:
    return {"nodes": nodes, "pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor}}


def refund(n: int, lines: list[int], cursor: str | None = None) -> dict[str, Any]:
    return {"id": f"gid://shopify/Refund/{n}", "legacyResourceId": str(n),
            "createdAt": "2026-11-20T10:00:00Z",
            "refundLineItems": connection([refund_line(i) for i in lines], cursor)}


def order_node(n: int, lines: list[int], refunds: list[dict[str, Any]],
               lines_cursor: str | None = None) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Order/{n}", "legacyResourceId": str(n), "name": f"#{n}",
        "createdAt": "2026-11-20T09:00:00Z", "updatedAt": "2026-11-20T10:00:00Z",
        "cancelledAt": None, "test": False, "email": "a@example.com", "phone": None,
        "currencyCode": "USD", "presentmentCurrencyCode": "USD",
        "displayFinancialStatus": "PARTIALLY_REFUNDED", "discountCodes": [],
        "customer": None, "shippingAddress": None,
        "lineItems": connection([line(i) for i in lines], lines_cursor),
        "refunds": refunds,
    }


class ScriptedGraphQL:
    """Answers each document from a script, and records every call (document name, variables,
    estimated cost)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], float]] = []

    def execute(self, shop: str, token: str, query: str, variables: Any = None, *,
                estimated_cost: float = 10.0) -> GraphQLResponse:
        name = query.split("query ", 1)[1].split("(", 1)[0].strip()
        variables = dict(variables or {})
        self.calls.append((name, variables, estimated_cost))
        return GraphQLResponse(data=self.answer(name, variables), cost=None)

    def answer(self, name: str, v: dict[str, Any]) -> dict[str, Any]:
        if name == "ReconcileOrders" and v["after"] is None:
            big = order_node(1, [11, 12], [refund(21, [11], cursor="r21"), refund(22, [12])],
                             lines_cursor="l1")
            return {"orders": connection([big], "page1")}
        if name == "ReconcileOrders":
            return {"orders": connection([order_node(2, [31], [])], None)}
        if name == "ReconcileOrderLines":
            return {"order": {"lineItems": connection([line(13)], None)}}
        if name == "ReconcileOrderRefunds":
            ids = ["gid://shopify/Refund/21", "gid://shopify/Refund/22", "gid://shopify/Refund/23"]
            return {"order": {"refunds": [{"id": i} for i in ids]}}
        if name == "ReconcileRefund" and v["id"].endswith("/21"):
            return {"node": refund(21, [13])}  # the rest of refund 21's lines
        if name == "ReconcileRefund" and v["id"].endswith("/23"):
            return {"node": refund(23, [11, 12])}
        raise AssertionError(f"unexpected call {name} {v}")


def test_pages_follow_cursors_and_big_orders_are_read_completely() -> None:
    gql = ScriptedGraphQL()
    source = ShopifyOrders(gql)  # type: ignore[arg-type]
    since = datetime(2026, 11, 20, 9, 30, 15, 999, tzinfo=UTC)
    until = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

    payloads = list(source.updated_since("s.myshopify.com", "t", since, 50, until=until))

    assert [p["id"] for p in payloads] == [1, 2]
    big = Order.from_payload(payloads[0])
    assert [ln.id for ln in big.lines] == [11, 12, 13]
    assert {r.id: [ln[0] for ln in r.lines] for r in big.refunds} == {
        21: [11, 13], 22: [12], 23: [11, 12]}
    first, *_, last_page = [c for c in gql.calls if c[0] == "ReconcileOrders"]
    # the page size asked for is capped to what the cost budget allows, and that cost is
    # what the client is told to wait for
    assert first[1]["first"] == MAX_PAGE_SIZE and first[2] == page_cost(MAX_PAGE_SIZE)
    assert first[1]["query"] == (
        "updated_at:>='2026-11-20T09:30:15Z' updated_at:<='2026-11-22T08:00:00Z'")
    assert last_page[1]["after"] == "page1"
    estimated = {name: cost for name, _, cost in gql.calls}
    assert estimated["ReconcileOrderLines"] == 723
    assert estimated["ReconcileOrderRefunds"] == 251
    assert estimated["ReconcileRefund"] == 603
    # an order without more to read costs no follow-up
    assert [c[0] for c in gql.calls].count("ReconcileOrders") == 2
    assert len(gql.calls) == 2 + 1 + 1 + 2


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        shopify_orders.search_time(datetime(2026, 11, 20))
