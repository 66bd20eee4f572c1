"""The emulator's bulk query operations follow Shopify's documented behaviour: real HTTP, the real
2026-07 schema, JSONL with ``__parentId``, the concurrency rule per API version, failures,
cancelation, the signed result URL and the ``bulk_operations/finish`` webhook.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import NoDeprecatedCustomRule, parse, specified_rules, validate

from adapters.shopify.emulator import ShopifyEmulator, serve_in_thread
from adapters.shopify.emulator.admin_schema import admin_schema
from adapters.shopify.emulator.webhooks import sign
from tests.integration.test_shopify_emulator import (
    API_KEY,
    API_SECRET,
    SHOP,
    FakeClock,
    Receiver,
    ShopRerouteTransport,
)

RUN = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

STATUS = """
query Status($id: ID!) {
  node(id: $id) {
    ... on BulkOperation {
      id status errorCode objectCount rootObjectCount url partialDataUrl fileSize
      completedAt createdAt query type
    }
  }
}"""

CURRENT = "query Current { currentBulkOperation { id status objectCount url } }"

LIST = """
query Running($query: String) {
  bulkOperations(first: 10, query: $query) { nodes { id status } }
}"""

CANCEL = """
mutation Cancel($id: ID!) {
  bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } }
}"""

COUNT = "query Count { customersCount(limit: 3) { count precision } all: customersCount { count } }"

SUBSCRIBE = """
mutation Subscribe($uri: String!) {
  webhookSubscriptionCreate(topic: BULK_OPERATIONS_FINISH,
                            webhookSubscription: {uri: $uri, format: JSON}) {
    userErrors { message }
  }
}"""

UPDATE = """
mutation Update($id: ID!, $input: DiscountCodeBasicInput!) {
  discountCodeBasicUpdate(id: $id, basicCodeDiscount: $input) {
    codeDiscountNode {
      codeDiscount {
        ... on DiscountCodeBasic {
          title appliesOncePerCustomer
          combinesWith { orderDiscounts productDiscounts shippingDiscounts }
          customerGets { value { ... on DiscountPercentage { percentage }
                                 ... on DiscountAmount { amount { amount } } } }
          minimumRequirement { ... on DiscountMinimumSubtotal {
            greaterThanOrEqualToSubtotal { amount } } }
          codes(first: 10) { nodes { code } }
        }
      }
    }
    userErrors { field message code }
  }
}"""

CREATE = """
mutation Create($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id }
    userErrors { message }
  }
}"""

# What the tests ask Shopify to run in bulk: customers, and their orders nested under them.
CUSTOMERS_WITH_ORDERS = """
{
  customers(query: "orders_count:>0") {
    edges {
      node {
        id email amountSpent { amount currencyCode }
        orders { edges { node { id name } } }
      }
    }
  }
}"""

DOCUMENTS = [RUN, STATUS, LIST, CANCEL, COUNT, SUBSCRIBE, UPDATE, CREATE]


def test_documents_are_valid_in_the_real_schema() -> None:
    schema = admin_schema()
    for document in DOCUMENTS:
        assert validate(schema, parse(document), (*specified_rules, NoDeprecatedCustomRule)) == []
    # currentBulkOperation is deprecated in 2026-07 (bulkOperations instead) but still served
    assert validate(schema, parse(CURRENT)) == []
    assert validate(schema, parse(CUSTOMERS_WITH_ORDERS)) == []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def emulator(clock: FakeClock, receiver: Receiver) -> Iterator[ShopifyEmulator]:
    emu = ShopifyEmulator(API_KEY, API_SECRET, app_url=receiver.url, clock=clock)
    emu.bulk.delay, emu.bulk.rate = 1.0, 10.0  # 1 s CREATED, then 10 objects a second
    emu.add_shop(SHOP)
    yield emu
    emu.close()


@pytest.fixture
def http(emulator: ShopifyEmulator) -> Iterator[httpx.Client]:
    server, url = serve_in_thread(emulator)
    with httpx.Client(transport=ShopRerouteTransport(url), timeout=5.0) as client:
        yield client
    server.shutdown()


@pytest.fixture
def token(emulator: ShopifyEmulator) -> str:
    return str(emulator.issue_access_token(SHOP)["access_token"])


def gql(
    http: httpx.Client,
    token: str,
    document: str,
    variables: dict[str, Any] | None = None,
    version: str = "2026-07",
) -> Any:
    response = http.post(
        f"https://{SHOP}/admin/api/{version}/graphql.json",
        json={"query": document, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def run(http: httpx.Client, token: str, query: str, version: str = "2026-07") -> Any:
    return gql(http, token, RUN, {"query": query}, version)["bulkOperationRunQuery"]


def status(http: httpx.Client, token: str, op_id: str) -> Any:
    return gql(http, token, STATUS, {"id": op_id})["node"]


def seed(emu: ShopifyEmulator, buyers: int = 12, idle: int = 3) -> None:
    for i in range(buyers):
        emu.checkout(
            SHOP,
            customer_email=f"buyer{i}@example.com",
            line_items=[{"title": "Tee", "price": f"{10 + i}.00", "quantity": 1}],
        )
    emu.checkout(
        SHOP,
        customer_email="buyer0@example.com",
        line_items=[{"title": "Cap", "price": "5.00", "quantity": 1}],
    )
    for i in range(idle):
        emu.add_customer(SHOP, email=f"idle{i}@example.com")


def test_a_bulk_query_runs_then_completes_with_jsonl_and_parent_ids(
    emulator: ShopifyEmulator, http: httpx.Client, token: str, clock: FakeClock
) -> None:
    seed(emulator)
    started = run(http, token, CUSTOMERS_WITH_ORDERS)
    assert started["userErrors"] == []
    op = started["bulkOperation"]
    assert op["status"] == "CREATED" and op["id"].startswith("gid://shopify/BulkOperation/")

    clock.advance(1.5)  # 0.5 s of running: 5 objects read
    running = status(http, token, op["id"])
    assert running["status"] == "RUNNING" and running["url"] is None
    assert running["objectCount"] == "5"

    clock.advance(10)
    done = status(http, token, op["id"])
    assert done["status"] == "COMPLETED" and done["completedAt"] and done["errorCode"] is None
    assert done["type"] == "QUERY" and done["query"] == CUSTOMERS_WITH_ORDERS
    assert done["objectCount"] == "25" and done["rootObjectCount"] == "12"  # 12 buyers, 13 orders
    assert gql(http, token, CURRENT)["currentBulkOperation"]["id"] == op["id"]

    download = http.get(done["url"])
    assert download.status_code == 200 and int(done["fileSize"]) == len(download.content)
    rows = [json.loads(line) for line in download.text.splitlines()]
    customers = [r for r in rows if "__parentId" not in r]
    orders = [r for r in rows if "__parentId" in r]
    assert len(customers) == 12 and len(orders) == 13
    assert all("orders" not in c for c in customers)  # nested connection lifted out
    position = {r["id"]: i for i, r in enumerate(rows)}
    assert all(position[o["__parentId"]] < position[o["id"]] for o in orders)
    buyer0 = next(c for c in customers if c["email"] == "buyer0@example.com")
    assert sum(1 for o in orders if o["__parentId"] == buyer0["id"]) == 2
    assert buyer0["amountSpent"] == {"amount": "15.0", "currencyCode": "USD"}

    forged = done["url"].replace("signature=", "signature=0")
    assert http.get(forged).status_code == 403


def test_one_bulk_query_at_a_time_before_2026_01_and_five_from_then_on(
    emulator: ShopifyEmulator, http: httpx.Client, token: str, clock: FakeClock
) -> None:
    seed(emulator, buyers=2, idle=0)
    first = run(http, token, CUSTOMERS_WITH_ORDERS, version="2025-10")["bulkOperation"]
    refused = run(http, token, CUSTOMERS_WITH_ORDERS, version="2025-10")
    assert refused["bulkOperation"] is None
    assert refused["userErrors"] == [
        {
            "field": None,
            "code": "OPERATION_IN_PROGRESS",
            "message": "A bulk query operation for this app and shop is already in progress: "
            f"{first['id']}.",
        }
    ]
    for _ in range(4):  # 2026-07: five at once
        assert run(http, token, CUSTOMERS_WITH_ORDERS)["userErrors"] == []
    sixth = run(http, token, CUSTOMERS_WITH_ORDERS)
    assert sixth["bulkOperation"] is None and sixth["userErrors"][0]["code"] == "LIMIT_REACHED"
    running = gql(http, token, LIST, {"query": "status:created"})["bulkOperations"]["nodes"]
    assert len(running) == 5

    clock.advance(5)  # all finished: room again
    assert run(http, token, CUSTOMERS_WITH_ORDERS, version="2025-10")["userErrors"] == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ('mutation { tagsAdd(id: "1", tags: ["x"]) { userErrors { message } } }', "mutations"),
        ("{ shop { name } }", "at least one connection"),
        ("{ customers { edges { node { id } } ", "Invalid bulk query"),
        ("{ customers { nodes { nope } } }", "Invalid bulk query"),
        ("{ customers { nodes { email orders { nodes { id } } } } }", "'id'"),
        (
            "{ orders { nodes { id customer { id orders { nodes { id lineItems { nodes { id } } }"
            " } } } } }",
            "nesting depth",
        ),
    ],
)
def test_bulk_queries_shopify_cannot_run_are_refused_with_user_errors(
    emulator: ShopifyEmulator, http: httpx.Client, token: str, query: str, message: str
) -> None:
    result = run(http, token, query)
    assert result["bulkOperation"] is None
    (error,) = result["userErrors"]
    assert error["code"] == "INVALID" and error["field"] == ["query"]
    assert message in error["message"]


def test_a_failed_bulk_operation_reports_its_error_code_and_partial_data(
    emulator: ShopifyEmulator, http: httpx.Client, token: str, clock: FakeClock
) -> None:
    seed(emulator, buyers=6, idle=0)
    emulator.fail_next_bulk_operation("TIMEOUT", after_objects=3)
    op = run(http, token, CUSTOMERS_WITH_ORDERS)["bulkOperation"]
    clock.advance(5)
    failed = status(http, token, op["id"])
    assert failed["status"] == "FAILED" and failed["errorCode"] == "TIMEOUT"
    assert failed["url"] is None and failed["objectCount"] == "3"
    partial = http.get(failed["partialDataUrl"])
    assert len(partial.text.splitlines()) == 3
    with pytest.raises(ValueError, match="BulkOperationErrorCode"):
        emulator.fail_next_bulk_operation("NOPE")


def test_canceling_a_running_operation_and_a_finished_one(
    emulator: ShopifyEmulator, http: httpx.Client, token: str, clock: FakeClock
) -> None:
    seed(emulator, buyers=3, idle=0)
    op = run(http, token, CUSTOMERS_WITH_ORDERS)["bulkOperation"]
    canceling = gql(http, token, CANCEL, {"id": op["id"]})["bulkOperationCancel"]
    assert canceling == {"bulkOperation": {"id": op["id"], "status": "CANCELING"}, "userErrors": []}
    assert status(http, token, op["id"])["status"] == "CANCELED"
    again = gql(http, token, CANCEL, {"id": op["id"]})["bulkOperationCancel"]
    assert "cannot be canceled" in again["userErrors"][0]["message"]
    unknown = gql(http, token, CANCEL, {"id": "gid://shopify/BulkOperation/1"})
    assert unknown["bulkOperationCancel"]["bulkOperation"] is None


def test_the_finish_webhook_goes_to_subscribers_only_signed_like_shopify(
    emulator: ShopifyEmulator,
    http: httpx.Client,
    token: str,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    seed(emulator, buyers=2, idle=0)
    op = run(http, token, CUSTOMERS_WITH_ORDERS)["bulkOperation"]
    clock.advance(5)
    assert status(http, token, op["id"])["status"] == "COMPLETED"
    assert receiver.by_topic("bulk_operations/finish") == []  # not subscribed: no webhook

    uri = f"{receiver.url}/bulk-finished"
    assert (
        gql(http, token, SUBSCRIBE, {"uri": uri})["webhookSubscriptionCreate"]["userErrors"] == []
    )
    second = run(http, token, CUSTOMERS_WITH_ORDERS)["bulkOperation"]
    clock.advance(5)
    emulator.process_jobs()
    (delivery,) = receiver.by_topic("bulk_operations/finish")
    assert delivery["path"] == "/bulk-finished"
    assert delivery["headers"]["x-shopify-hmac-sha256"] == sign(API_SECRET, delivery["body"])
    payload = json.loads(delivery["body"])
    assert payload["admin_graphql_api_id"] == second["id"]
    assert payload["status"] == "completed" and payload["type"] == "query"
    assert payload["error_code"] is None and payload["completed_at"]


def test_customers_count_is_exact_up_to_its_limit(
    emulator: ShopifyEmulator, http: httpx.Client, token: str
) -> None:
    seed(emulator, buyers=4, idle=1)
    counted = gql(http, token, COUNT)
    assert counted["customersCount"] == {"count": 3, "precision": "AT_LEAST"}
    assert counted["all"] == {"count": 5}


def test_discount_code_basic_update_changes_terms_and_keeps_the_codes(
    emulator: ShopifyEmulator, http: httpx.Client, token: str
) -> None:
    created = gql(
        http,
        token,
        CREATE,
        {
            "input": {
                "title": "Friends 10%",
                "code": "AVA",
                "startsAt": "2020-01-01T00:00:00Z",
                "context": {"all": "ALL"},
                "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
                "minimumRequirement": {"subtotal": {"greaterThanOrEqualToSubtotal": "30"}},
            }
        },
    )["discountCodeBasicCreate"]["codeDiscountNode"]["id"]
    updated = gql(
        http,
        token,
        UPDATE,
        {
            "id": created,
            "input": {
                "title": "Friends 5 off",
                "customerGets": {
                    "value": {"discountAmount": {"amount": "5", "appliesOnEachItem": False}},
                    "items": {"all": True},
                },
                "appliesOncePerCustomer": True,
                "combinesWith": {"shippingDiscounts": True},
                "minimumRequirement": {
                    "subtotal": {"greaterThanOrEqualToSubtotal": None},
                    "quantity": {"greaterThanOrEqualToQuantity": None},
                },
            },
        },
    )["discountCodeBasicUpdate"]
    assert updated["userErrors"] == []
    basic = updated["codeDiscountNode"]["codeDiscount"]
    assert basic["title"] == "Friends 5 off" and basic["appliesOncePerCustomer"] is True
    assert basic["customerGets"]["value"] == {"amount": {"amount": "5.0"}}
    assert basic["minimumRequirement"] is None
    assert basic["combinesWith"] == {
        "orderDiscounts": False,
        "productDiscounts": False,
        "shippingDiscounts": True,
    }
    assert basic["codes"]["nodes"] == [{"code": "AVA"}]
    order = emulator.checkout(
        SHOP,
        customer_email="friend@example.com",
        discount_codes=["ava"],
        line_items=[{"title": "Tee", "price": "20.00", "quantity": 1}],
    )
    assert order["total_discounts"] == "5.00"  # the new terms apply, the old minimum is gone

    missing = gql(
        http, token, UPDATE, {"id": "gid://shopify/DiscountCodeNode/1", "input": {"title": "x"}}
    )["discountCodeBasicUpdate"]
    assert missing["codeDiscountNode"] is None
    assert missing["userErrors"][0]["message"] == "Discount does not exist"
