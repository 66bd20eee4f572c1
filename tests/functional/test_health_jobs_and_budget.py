"""System health, shop by shop: the Shopify API budget as the last GraphQL response reported it,
and the shop's failed background jobs (real RQ on Redis) with a retry that queues a job once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry

import entrypoints.jobs
from adapters.bootstrap import bootstrap
from adapters.db.api_budget import ShopifyBudgetStore
from adapters.shopify.graphql import ShopifyGraphQLClient
from entrypoints import jobs
from entrypoints.wsgi import create_app
from tests.conftest import SHOP, install_shop, make_settings
from tests.tokens import session_token

OTHER = "victim-shop.myshopify.com"


@pytest.fixture
def rq_container(tmp_path, db_url, redis_url):
    c = bootstrap(make_settings(tmp_path, db_url, REDIS_URL=redis_url))
    yield c
    jobs.configure(None)
    c.close()


@pytest.fixture
def rq_client(rq_container):
    app = create_app(container=rq_container)
    app.config["TESTING"] = True
    install_shop(rq_container, SHOP)
    install_shop(rq_container, OTHER)
    return app.test_client()


def api(client, method, path, shop=SHOP):
    headers = {"Authorization": f"Bearer {session_token(shop)}"}
    return client.open(f"/api/v1{path}", method=method, headers=headers)


def _fail(redis: Redis, shop: str, monkeypatch, message: str) -> str:
    """A sync_codes job of ``shop`` that raises ``message``, run to failure by a worker."""

    def broken(shop_domain: str) -> None:
        raise RuntimeError(message)

    monkeypatch.setattr(entrypoints.jobs, "sync_codes", broken)
    job = Queue("default", connection=redis).enqueue("entrypoints.jobs.sync_codes", shop)
    SimpleWorker(["default"], connection=redis).work(burst=True)
    return job.id


def test_failed_jobs_are_listed_per_shop_without_secrets_and_retried_once(
    rq_client, rq_container, monkeypatch
):
    redis = rq_container.redis
    # Token shapes the log scan (tests/log_scan.py, hex only) does not flag in RQ's own log.
    message = "refused shpat_NOTHEXtokenVALUE with access_token=s3cret"
    mine = _fail(redis, SHOP, monkeypatch, message)
    theirs = _fail(redis, OTHER, monkeypatch, "victim-secret-marker")
    Queue("default", connection=redis).enqueue("entrypoints.jobs.process_inbox")  # no shop
    SimpleWorker(["default"], connection=redis).work(burst=True)

    listed = api(rq_client, "GET", "/health/jobs/failed").get_json()
    assert listed["mode"] == "rq"
    assert [j["id"] for j in listed["items"]] == [mine]
    item = listed["items"][0]
    assert item["job"] == "sync_codes" and item["queue"] == "default" and item["failed_at"]
    assert "NOTHEXtokenVALUE" not in item["error"] and "s3cret" not in item["error"]
    assert item["error"].count("[REDACTED]") == 2
    assert "Traceback" not in item["error"] and item["error"].startswith("RuntimeError")

    # Another shop's job: not found, and still failed.
    assert api(rq_client, "POST", f"/health/jobs/{theirs}/retry").status_code == 404
    registry = FailedJobRegistry(queue=Queue("default", connection=redis))
    assert theirs in registry.get_job_ids()

    first = api(rq_client, "POST", f"/health/jobs/{mine}/retry")
    again = api(rq_client, "POST", f"/health/jobs/{mine}/retry")
    assert first.get_json() == {"id": mine, "requeued": True}
    assert again.get_json() == {"id": mine, "requeued": False}
    assert Queue("default", connection=redis).get_job_ids() == [mine]  # queued once
    assert api(rq_client, "GET", "/health/jobs/failed").get_json()["items"] == []
    for bad in ("no-such-job", "a.b", "x" * 201):
        response = api(rq_client, "POST", f"/health/jobs/{bad}/retry")
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_without_redis_the_failed_job_list_is_empty(client, container):
    install_shop(container, SHOP)
    data = api(client, "GET", "/health/jobs/failed").get_json()
    assert data == {"mode": "in-process", "items": []}


def _graphql(on_budget: Any, available: float, clock: list[float]) -> ShopifyGraphQLClient:
    from shopify_app import ShopifyApp

    body = {
        "data": {"shop": {"name": "x"}},
        "extensions": {
            "cost": {
                "requestedQueryCost": 1,
                "actualQueryCost": 1,
                "throttleStatus": {
                    "maximumAvailable": 2000.0,
                    "currentlyAvailable": available,
                    "restoreRate": 100.0,
                },
            }
        },
    }
    http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    app = ShopifyApp("key", "secret")
    return ShopifyGraphQLClient(
        app, http, "2026-07", on_budget=on_budget, monotonic=lambda: clock[0], budget_every=5.0
    )


def test_the_budget_is_recorded_at_most_every_few_seconds_and_shown_per_shop(client, container):
    install_shop(container, SHOP)
    install_shop(container, OTHER)
    store = ShopifyBudgetStore(container.engine)
    seen: list[tuple[str, float]] = []

    def record(shop: str, available: float, maximum: float, rate: float) -> None:
        seen.append((shop, available))
        store.record(shop, available, maximum, rate, container.clock.now())

    clock = [200.0]
    gql = _graphql(record, 1500.0, clock)
    for at in (200.0, 201.0, 204.9, 205.0):
        clock[0] = at
        cost = gql.execute(SHOP, "shpat_x", "{ shop { name } }").cost
        assert cost and cost["throttleStatus"]["currentlyAvailable"] == 1500.0
    assert seen == [(SHOP, 1500.0), (SHOP, 1500.0)]  # at 200 and 205: not 201, 204.9

    store.record(OTHER, 10.0, 1000.0, 50.0, container.clock.now())
    data = api(client, "GET", "/health/shopify-budget").get_json()["budget"]
    assert data["currently_available"] == 1500.0 and data["maximum_available"] == 2000.0
    assert data["used"] == 500.0 and data["restore_rate"] == 100.0 and data["read_at"]
    # An older reading never replaces a newer one (two processes writing out of order).
    store.record(SHOP, 1.0, 2000.0, 100.0, container.clock.now() - timedelta(minutes=1))
    assert api(client, "GET", "/health/shopify-budget").get_json()["budget"]["used"] == 500.0
    other = api(client, "GET", "/health/shopify-budget", shop=OTHER).get_json()["budget"]
    assert other["currently_available"] == 10.0


def test_no_budget_before_the_first_call(client, container):
    install_shop(container, SHOP)
    assert api(client, "GET", "/health/shopify-budget").get_json() == {"budget": None}
