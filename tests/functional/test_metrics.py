"""GET /metrics: off without METRICS_TOKEN, refused without the token, and figures that follow
the inbox (deliveries by status, lag, stored total) and Redis's queues."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.bootstrap import bootstrap
from entrypoints.wsgi import create_app
from tests.conftest import install_shop, make_settings, webhook_headers


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def metrics_client(tmp_path, db_url, redis_url):
    settings = make_settings(tmp_path, db_url, METRICS_TOKEN="scrape-me", REDIS_URL=redis_url)
    container = bootstrap(settings)  # RQ on the test Redis: jobs wait there, nothing drains
    app = create_app(container=container)
    yield app.test_client(), container
    container.close()


def test_no_token_setting_no_metrics_route(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_token(metrics_client):
    client, _ = metrics_client
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.is_json


def test_metrics_follow_the_inbox(metrics_client):
    client, container = metrics_client
    install_shop(container)
    auth = {"Authorization": "Bearer scrape-me"}
    before = samples(client.get("/metrics", headers=auth).get_data(as_text=True))
    assert before[("ambassador_database_up", ())] == 1
    assert before[("ambassador_redis_up", ())] == 1
    for i in range(3):
        body = json.dumps({"id": i, "customer": {"id": 2}}).encode()
        response = client.post("/webhooks/shopify", data=body,
                               headers=webhook_headers("customers/update", body))
        assert response.status_code == 200
    response = client.get("/metrics", headers=auth)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    after = samples(response.get_data(as_text=True))
    stored = ("ambassador_webhooks_stored_total", ())
    assert after[stored] == before[stored] + 3
    assert after[("ambassador_inbox_deliveries", (("status", "pending"),))] == 3
    # intake queued one drain for the three (a coalescing trigger), waiting on the queue
    assert after[("ambassador_queue_jobs", (("queue", "webhooks"), ("state", "queued")))] == 1
    assert after[("ambassador_inbox_oldest_pending_age_seconds", ())] >= 0


def test_metrics_count_open_payouts_and_the_fulfilment_wait(metrics_client):
    from datetime import timedelta
    from decimal import Decimal

    from connector.domain.ambassadors import Ambassador, AmbassadorStatus, CodeState
    from connector.domain.payouts import PayoutState, RewardForm
    from connector.ports import NewPayout

    client, container = metrics_client
    shop = install_shop(container)
    auth = {"Authorization": "Bearer scrape-me"}
    now = container.clock.now()
    with container.uow() as uow:
        ava = uow.ambassadors.add(Ambassador(
            None, shop.id, "ava@example.com", AmbassadorStatus.ACTIVE, first_name="Ava",
            code="AVA10", code_state=CodeState.ACTIVE, since=now,
        ))
        assert ava.id is not None
        states = [PayoutState.APPROVED, PayoutState.APPROVED, PayoutState.AWAITING_APPROVAL,
                  PayoutState.FULFILLED]
        for state in states:
            uow.payouts.add(shop.id, NewPayout(ava.id, None, RewardForm.GIFT_CARD, state,
                                               Decimal("5.00"), Decimal("5.00"), "USD"),
                            "test", "seeded")
        uow.commit()
    container.clock.now = lambda: now + timedelta(minutes=10)  # type: ignore[method-assign]
    figures = samples(client.get("/metrics", headers=auth).get_data(as_text=True))
    open_ = {k[1][0][1]: v for k, v in figures.items() if k[0] == "ambassador_payouts_open"}
    assert open_ == {"approved": 2, "awaiting_approval": 1, "fulfilling": 0, "failed": 0}
    assert 590 <= figures[("ambassador_payouts_oldest_due_age_seconds", ())] <= 660
