"""The Admin GraphQL client paces itself from Shopify's throttleStatus and types its errors."""

from __future__ import annotations

import json

import httpx
import pytest
from shopify_app import ShopifyApp

from adapters.shopify.graphql import GraphQLError, ShopifyGraphQLClient
from adapters.shopify.http import RerouteTransport
from connector.ports import PlatformRetryable, PlatformUnauthorized

SHOP = "pace-shop.myshopify.com"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def cost(available: float, requested: float = 10, maximum: float = 2000, rate: float = 100):
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": requested,
            "throttleStatus": {
                "maximumAvailable": maximum,
                "currentlyAvailable": available,
                "restoreRate": rate,
            },
        }
    }


def client_for(responses, clock):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses.pop(0)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    gql = ShopifyGraphQLClient(
        ShopifyApp("k", "s"),
        http,
        "2026-07",
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        max_wait=60,
    )
    return gql, seen


def ok(data, available=1990.0, requested=10):
    return httpx.Response(200, json={"data": data, "extensions": cost(available, requested)})


def test_success_returns_data_and_sends_the_token_to_the_versioned_endpoint():
    clock = Clock()
    gql, seen = client_for([ok({"shop": {"name": "x"}})], clock)
    result = gql.execute(SHOP, "shpat_1", "{ shop { name } }")
    assert result.data == {"shop": {"name": "x"}}
    assert str(seen[0].url) == f"https://{SHOP}/admin/api/2026-07/graphql.json"
    assert seen[0].headers["X-Shopify-Access-Token"] == "shpat_1"
    assert clock.sleeps == []


def test_the_next_call_waits_just_long_enough_for_the_bucket():
    clock = Clock()
    gql, _ = client_for([ok({}, available=5), ok({}, available=0)], clock)
    gql.execute(SHOP, "t", "{ shop { name } }")
    gql.execute(SHOP, "t", "{ shop { name } }", estimated_cost=50)
    assert clock.sleeps == [pytest.approx((50 - 5) / 100)]


def test_throttled_answers_are_waited_out_and_retried_never_failed():
    clock = Clock()
    throttled = httpx.Response(
        200,
        json={
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": cost(available=20, requested=500),
        },
    )
    gql, seen = client_for([throttled, ok({"a": 1})], clock)
    assert gql.execute(SHOP, "t", "{ shop { name } }").data == {"a": 1}
    assert len(seen) == 2 and gql.throttled == 1
    assert clock.sleeps == [pytest.approx((500 - 20) / 100)]


def test_429_honours_retry_after():
    clock = Clock()
    gql, seen = client_for([httpx.Response(429, headers={"Retry-After": "2.0"}), ok({})], clock)
    gql.execute(SHOP, "t", "{ shop { name } }")
    assert clock.sleeps == [2.0] and len(seen) == 2


def test_5xx_is_retried_with_back_off_then_reported_as_retryable():
    clock = Clock()
    gql, seen = client_for([httpx.Response(502) for _ in range(5)], clock)
    with pytest.raises(PlatformRetryable):
        gql.execute(SHOP, "t", "{ shop { name } }")
    assert len(seen) == 5 and clock.sleeps == [2.0, 4.0, 8.0, 16.0]


def test_401_is_unauthorized_and_not_retried():
    clock = Clock()
    gql, seen = client_for([httpx.Response(401, json={"errors": "[API] Invalid"})], clock)
    with pytest.raises(PlatformUnauthorized):
        gql.execute(SHOP, "t", "{ shop { name } }")
    assert len(seen) == 1


def test_a_rejected_document_is_a_graphql_error_with_the_message():
    clock = Clock()
    body = {
        "errors": [
            {
                "message": "Field 'nope' doesn't exist on type 'Shop'",
                "extensions": {"code": "undefinedField"},
            }
        ]
    }
    gql, _ = client_for([httpx.Response(200, json=body)], clock)
    with pytest.raises(GraphQLError, match="nope"):
        gql.execute(SHOP, "t", "{ shop { nope } }")


def test_reroute_transport_sends_shop_urls_to_the_stand_in():
    seen: list[httpx.Request] = []
    inner = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={}))
    http = httpx.Client(transport=RerouteTransport("http://127.0.0.1:9999/base", inner))
    http.post(f"https://{SHOP}/admin/oauth/access_token?x=1", content=json.dumps({"a": 1}))
    assert str(seen[0].url) == f"http://127.0.0.1:9999/base/{SHOP}/admin/oauth/access_token?x=1"
    assert seen[0].content == b'{"a": 1}'


def test_a_documents_reported_cost_is_remembered_for_pacing_the_next_call():
    clock = Clock()
    gql, _ = client_for([ok({}, available=100, requested=500), ok({}, available=0)], clock)
    gql.execute(SHOP, "t", "{ big }", estimated_cost=10)
    gql.execute(SHOP, "t", "{ big }", estimated_cost=10)  # the caller still guesses 10
    assert clock.sleeps == [pytest.approx((500 - 100) / 100)]
    assert gql.throttled == 0


def test_within_a_bound_a_long_wait_for_the_bucket_is_raised_not_slept():
    from adapters.shopify.graphql import waits_at_most
    from connector.ports import PlatformThrottled

    clock = Clock()
    throttled = httpx.Response(
        200,
        json={
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": cost(available=0, requested=50, rate=2),
        },
    )
    gql, seen = client_for([throttled, ok({"a": 1})], clock)
    with waits_at_most(5), pytest.raises(PlatformThrottled) as caught:
        gql.execute(SHOP, "t", "{ shop { name } }")
    assert caught.value.retry_in == pytest.approx(25.0)  # 50 points at 2 a second
    assert clock.sleeps == [] and len(seen) == 1
    clock.t += 25  # the bucket has refilled: the call goes through without waiting
    with waits_at_most(5):
        assert gql.execute(SHOP, "t", "{ shop { name } }").data == {"a": 1}
    assert clock.sleeps == []


def test_within_a_bound_429_back_off_is_slept_until_it_would_exceed_it():
    """shopifyapp drops the headers of a final 429 (its answer carries no ``Retry-After``), so
    the back-off decides: 2 s and 4 s are slept, 8 s is over the bound of 5 and raised."""
    from adapters.shopify.graphql import waits_at_most
    from connector.ports import PlatformThrottled

    clock = Clock()
    too_many = [httpx.Response(429, headers={"Retry-After": "90"}) for _ in range(3)]
    gql, seen = client_for(too_many, clock)
    with waits_at_most(5), pytest.raises(PlatformThrottled) as caught:
        gql.execute(SHOP, "t", "{ shop { name } }")
    assert caught.value.retry_in == 8.0 and clock.sleeps == [2.0, 4.0] and len(seen) == 3
