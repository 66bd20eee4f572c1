"""Engagement over HTTP: orders arrive as signed webhooks, the scheduled job scores everyone,
the merchant reads bands, shares over time and each score's explanation; a challenge runs end
to end (join, live leaderboard with the tie rule, close, prize in the reward ledger)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from adapters.bootstrap import bootstrap
from adapters.clock import FakeClock
from adapters.queue.inprocess import InProcessJobQueue
from connector.domain.ambassadors import Ambassador, AmbassadorStatus, CodeState
from entrypoints import jobs
from entrypoints.wsgi import create_app
from tests.conftest import SHOP, install_shop, webhook_headers
from tests.fakes import FakeCommercePlatform
from tests.tokens import session_token

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clock():
    return FakeClock(NOW)


@pytest.fixture
def c(settings, clock):
    container = bootstrap(
        settings, shopify=FakeCommercePlatform(), jobs=InProcessJobQueue(threaded=False),
        clock=clock,
    )
    jobs.configure(container)
    yield container
    jobs.configure(None)
    container.close()


@pytest.fixture
def client(c):
    return create_app(container=c).test_client()


@pytest.fixture
def shop(c):
    return install_shop(c, SHOP)


def api(client, method: str, path: str, body: Any = None, shop: str = SHOP) -> Any:
    return client.open(
        f"/api/v1{path}", method=method, json=body,
        headers={"Authorization": f"Bearer {session_token(shop)}"},
    )


def enrol(c, shop, first: str, last: str, code: str, status=AmbassadorStatus.ACTIVE) -> int:
    with c.uow() as uow:
        a = uow.ambassadors.add(Ambassador(
            None, shop.id, f"{code.lower()}@example.com", status, first_name=first,
            last_name=last, code=code, code_state=CodeState.ACTIVE, since=NOW,
        ))
        uow.commit()
    return a.id


_order_ids = iter(range(5_000_000, 6_000_000))


def order(client, code: str, amount: str, at: datetime, customer: int) -> int:
    """A paid order with ``code``, placed at ``at`` by ``customer``, as Shopify sends it."""
    order_id = next(_order_ids)
    payload = {
        "id": order_id, "name": f"#{order_id}", "currency": "USD",
        "presentment_currency": "USD", "created_at": at.isoformat(),
        "updated_at": at.isoformat(), "financial_status": "paid", "cancelled_at": None,
        "test": False, "email": f"buyer{customer}@example.com",
        "customer": {"id": customer, "created_at": at.isoformat()},
        "discount_codes": [{"code": code, "amount": "1.00", "type": "fixed_amount"}],
        "line_items": [{
            "id": order_id * 10, "quantity": 1, "price": amount,
            "price_set": {"shop_money": {"amount": amount},
                          "presentment_money": {"amount": amount}},
            "discount_allocations": [],
        }],
        "refunds": [],
    }
    body = json.dumps(payload).encode()
    response = client.post("/webhooks/shopify", data=body,
                           headers=webhook_headers("orders/paid", body))
    assert response.status_code == 200
    return order_id


def test_scoring_puts_ambassadors_in_bands_with_shares_over_time_and_explanations(c, client, shop):
    star = enrol(c, shop, "Star", "Seller", "STAR10")
    some = enrol(c, shop, "Some", "Sales", "SOME10")
    idle = enrol(c, shop, "Idle", "Person", "IDLE10")
    enrol(c, shop, "Applied", "Only", "APPL10", status=AmbassadorStatus.APPLIED)
    for i in range(5):
        order(client, "STAR10", "110.00", NOW - timedelta(days=2, hours=i), customer=100 + i)
    order(client, "some10", "20.00", NOW - timedelta(days=1), customer=200)
    before = api(client, "GET", f"/ambassadors/{star}").get_json()["engagement"]
    assert before == {"score": 0.0, "band": "not engaged"}  # nobody scored yet

    assert jobs.score_engagement() == {"scored": 3}  # the applicant is not scored

    summary = api(client, "GET", "/engagement").get_json()
    assert summary["counts"] == {"not engaged": 1, "marginal": 1, "engaged": 1}
    assert summary["shares"] == {"not engaged": "33.3", "marginal": "33.3", "engaged": "33.3"}
    assert summary["over_time"] == [
        {"day": NOW.date().isoformat(), "counts": summary["counts"], "shares": summary["shares"]}
    ]
    assert summary["weights"]["recency"] == 20 and sum(summary["weights"].values()) == 100
    bands = {
        a["id"]: a["engagement"]
        for a in api(client, "GET", "/ambassadors").get_json()["items"]
    }
    assert bands[star] == {"score": 65.0, "band": "engaged"}  # 20 + 15 + 15 + 15
    assert bands[idle] == {"score": 0.0, "band": "not engaged"}
    assert bands[some]["band"] == "marginal"

    explained = api(client, "GET", f"/ambassadors/{star}/engagement").get_json()
    parts = {p["name"]: p for p in explained["components"]}
    assert parts["orders"] == {
        "name": "orders", "description": "orders credited in the window", "weight": 15,
        "value": "5", "fraction": "1.000", "points": "15.00",
    }
    assert parts["content"]["points"] == "0.00"
    assert sum(Decimal(p["points"]) for p in parts.values()) == Decimal("65.00")
    assert explained["how_to_rise"][0].startswith("Submit a post")

    # The merchant weighs orders more: the next scoring follows, and the day's snapshot too.
    response = api(client, "PATCH", "/program/settings", {"engagement": {"weights": {
        "orders": 60, "recency": 0, "revenue": 0, "new_customers": 0, "content": 0,
        "challenges": 0, "portal_visits": 40}}})
    assert response.status_code == 200, response.get_json()
    jobs.score_engagement()
    after = api(client, "GET", f"/ambassadors/{some}/engagement").get_json()
    assert after["score"] == 12.0  # 1 of 5 orders × 60 / 100 weight
    assert after["band"] == "not engaged"
    summary = api(client, "GET", "/engagement").get_json()
    assert summary["counts"] == {"not engaged": 2, "marginal": 0, "engaged": 1}
    assert len(summary["over_time"]) == 1  # one snapshot a day, the latest scoring's

    c.clock.advance(days=1)
    jobs.score_engagement()
    assert len(api(client, "GET", "/engagement").get_json()["over_time"]) == 2


def test_bad_engagement_settings_are_refused_and_nothing_changes(c, client, shop):
    for bad in (
        {"engagement": {"weights": {"followers": 10}}},
        {"engagement": {"marginal_from": "80", "engaged_from": "50"}},
        {"engagement": {"window_days": 3}},
        {"engagement": "high"},
    ):
        response = api(client, "PATCH", "/program/settings", bad)
        assert response.status_code == 422, bad
        assert response.get_json()["error"]["message"].startswith("engagement")
    settings = api(client, "GET", "/program/settings").get_json()
    assert settings["engagement"]["marginal_from"] == "25"


def test_explanation_of_an_unknown_ambassador_is_404(client, shop):
    response = api(client, "GET", "/ambassadors/999999/engagement")
    assert response.status_code == 404 and response.is_json


def _leaderboard(client, cid: int) -> list[tuple[int, int, str, str | None]]:
    body = api(client, "GET", f"/challenges/{cid}/leaderboard").get_json()
    return [(r["rank"], r["ambassador_id"], r["value"], r["prize"]) for r in body["items"]]


def test_a_challenge_runs_end_to_end_with_its_leaderboard_tie_rule_and_prizes(c, client, shop):
    early = enrol(c, shop, "Early", "Bird", "EARLY10")
    late = enrol(c, shop, "Late", "Comer", "LATE10")
    top = enrol(c, shop, "Top", "Seller", "TOP10")
    zero = enrol(c, shop, "Zero", "Sales", "ZERO10")
    outsider = enrol(c, shop, "Not", "Joined", "OUT10")
    created = api(client, "POST", "/challenges", {
        "name": "December push", "metric": "revenue", "mode": "ranking",
        "starts_at": (NOW - timedelta(days=3)).isoformat(),
        "ends_at": (NOW + timedelta(days=1)).isoformat(),
        "prizes": [{"rank": 1, "amount": "50.00"}, {"rank": 2, "amount": "20.00"},
                   {"rank": 3, "amount": "10.00"}, {"rank": 4, "amount": "5.00"}],
    })
    assert created.status_code == 201, created.get_json()
    cid = created.get_json()["id"]
    assert created.get_json()["state"] == "running"
    for aid in (early, late, top, zero):
        response = api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": aid})
        assert response.status_code == 201
    again = api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": early})
    assert again.status_code == 200 and again.get_json()["new"] is False

    order(client, "EARLY10", "40.00", NOW - timedelta(days=2), customer=1)
    order(client, "LATE10", "40.00", NOW - timedelta(days=1), customer=2)  # same total, later
    order(client, "TOP10", "90.00", NOW - timedelta(hours=5), customer=3)
    order(client, "OUT10", "500.00", NOW - timedelta(hours=5), customer=4)  # not a participant
    order(client, "TOP10", "900.00", NOW - timedelta(days=5), customer=5)  # before the start

    assert _leaderboard(client, cid) == [
        (1, top, "90", "50.00"), (2, early, "40", "20.00"), (3, late, "40", "10.00"),
        (4, zero, "0", None),
    ]
    names = [r["name"] for r in api(client, "GET", f"/challenges/{cid}/leaderboard")
             .get_json()["items"]]
    assert names == ["Top Seller", "Early Bird", "Late Comer", "Zero Sales"]  # the admin's view
    from connector.services.challenges import leaderboard

    _, storefront, _ = leaderboard(c.uow(), c.clock, shop, cid, masked=True)
    assert [s.name for s in storefront] == ["Top S.", "Early B.", "Late C.", "Zero S."]
    assert api(client, "POST", f"/challenges/{cid}/close").status_code == 409  # still running

    c.clock.advance(days=2)
    late_join = api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": outsider})
    assert late_join.status_code == 409
    assert jobs.close_challenges() == {"closed": 1}
    assert jobs.close_challenges() == {"closed": 0}  # closing twice pays nobody twice
    body = api(client, "GET", f"/challenges/{cid}/leaderboard").get_json()
    assert body["final"] is True and body["challenge"]["state"] == "closed"
    assert [(r["ambassador_id"], r["prize"]) for r in body["items"]] == [
        (top, "50.00"), (early, "20.00"), (late, "10.00"), (zero, None)]
    bonuses = [
        e for e in api(client, "GET", f"/ambassadors/{top}/ledger").get_json()["items"]
        if e["kind"] == "bonus"
    ]
    assert len(bonuses) == 1
    assert bonuses[0]["order_id"] is None and Decimal(bonuses[0]["amount"]) == Decimal("50")
    with c.engine.connect() as conn:
        keys = sorted(r[0] for r in conn.exec_driver_sql(
            "SELECT idempotency_key FROM ledger_entries WHERE kind = 'bonus'"))
    assert keys == sorted(f"challenge:{cid}:prize:{a}" for a in (early, late, top))
    # Challenge participation counts toward engagement.
    jobs.score_engagement()
    parts = {p["name"]: p for p in
             api(client, "GET", f"/ambassadors/{zero}/engagement").get_json()["components"]}
    assert parts["challenges"]["points"] == "10.00"


def test_a_challenge_nobody_joined_ends_cleanly(c, client, shop):
    enrol(c, shop, "Someone", "Else", "ELSE10")
    cid = api(client, "POST", "/challenges", {
        "preset": "monthly", "month": f"{NOW:%Y-%m}", "metric": "orders",
        "prizes": [{"rank": 1, "amount": "25"}],
    }).get_json()["id"]
    c.clock.advance(days=32)
    assert jobs.close_challenges() == {"closed": 1}
    body = api(client, "GET", f"/challenges/{cid}/leaderboard").get_json()
    assert body == {**body, "final": True, "items": []}
    assert body["challenge"]["participants"] == 0
    with c.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ledger_entries").scalar_one() == 0


def test_the_annual_award_and_target_challenges(c, client, shop):
    annual = api(client, "POST", "/challenges", {
        "preset": "annual_most_raised", "year": NOW.year,
        "prizes": [{"rank": 1, "amount": "500", "label": "Ambassador of the year"}]})
    assert annual.status_code == 201
    assert annual.get_json()["name"] == f"Most raised {NOW.year}"
    a = enrol(c, shop, "Target", "Hitter", "HIT10")
    b = enrol(c, shop, "Target", "Miss", "MISS10")
    cid = api(client, "POST", "/challenges", {
        "name": "Three orders", "metric": "orders", "mode": "target", "target": "2",
        "starts_at": (NOW - timedelta(days=1)).isoformat(),
        "ends_at": (NOW + timedelta(hours=1)).isoformat(),
        "prizes": [{"amount": "15"}]}).get_json()["id"]
    for aid in (a, b):
        api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": aid})
    order(client, "HIT10", "10.00", NOW - timedelta(hours=3), customer=11)
    order(client, "HIT10", "10.00", NOW - timedelta(hours=2), customer=12)
    order(client, "MISS10", "10.00", NOW - timedelta(hours=2), customer=13)
    c.clock.advance(hours=2)
    assert api(client, "POST", f"/challenges/{cid}/close").status_code == 200
    assert [(r[1], r[3]) for r in _leaderboard(client, cid)] == [(a, "15.00"), (b, None)]
    listed = api(client, "GET", "/challenges").get_json()["items"]
    assert {x["state"] for x in listed} == {"closed", "running"}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "metric": "likes", "starts_at": "2026-12-01T00:00:00Z",
         "ends_at": "2026-12-31T00:00:00Z"},
        {"preset": "monthly", "month": "13/2026", "metric": "orders"},
        {"name": "<script>", "metric": "orders", "starts_at": "nope", "ends_at": "nope"},
        [],
    ],
)
def test_bad_challenges_are_422_with_a_json_error(client, shop, body):
    response = api(client, "POST", "/challenges", body)
    assert response.status_code in (400, 422)
    assert response.get_json()["error"]["code"] in ("invalid_challenge", "invalid_json")
    assert api(client, "GET", "/challenges").get_json()["items"] == []


def test_only_active_ambassadors_join(c, client, shop):
    paused = enrol(c, shop, "Paused", "One", "PAUSE10", status=AmbassadorStatus.PAUSED)
    cid = api(client, "POST", "/challenges", {
        "preset": "monthly", "metric": "orders", "month": f"{NOW:%Y-%m}"}).get_json()["id"]
    response = api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": paused})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "ambassador_not_active"
    for bad in ({"ambassador_id": "1"}, {}, {"ambassador_id": True}):
        assert api(client, "POST", f"/challenges/{cid}/participants", bad).status_code == 422
    missing = api(client, "POST", f"/challenges/{cid}/participants", {"ambassador_id": 99999})
    assert missing.status_code == 404


def test_scoring_in_batches_scores_everyone_and_drops_people_no_longer_scored(
    c, client, shop, monkeypatch
):
    from connector.services import engagement as service

    monkeypatch.setattr(service, "BATCH", 2)
    ids = [enrol(c, shop, f"P{i}", "Q", f"BATCH{i}") for i in range(5)]
    assert jobs.score_engagement() == {"scored": 5}
    with c.uow() as uow:
        assert set(uow.engagement.scores(shop.id)) == set(ids)
    api(client, "POST", f"/ambassadors/{ids[0]}/status", {"status": "removed"})
    assert jobs.score_engagement() == {"scored": 4}
    assert api(client, "GET", "/engagement").get_json()["scored"] == 4
    assert api(client, "GET", f"/ambassadors/{ids[0]}").get_json()["engagement"] == {
        "score": 0.0, "band": "not engaged"}


def test_the_commands_score_and_close_by_hand(c, shop, settings):
    from click.testing import CliRunner

    from entrypoints.cli import main

    enrol(c, shop, "Cli", "User", "CLI10")
    env = {"APP_ENV": "test", "DATABASE_URL": settings.database_url,
           "SHOPIFY_API_KEY": "k", "SHOPIFY_API_SECRET": "s",
           "INSTANCE_PATH": str(settings.instance_path)}
    try:
        result = CliRunner().invoke(main, ["score-engagement", "--shop", SHOP], env=env)
        assert result.exit_code == 0, result.output
        assert "scored 1: 0 engaged, 0 marginal, 1 not engaged" in result.output
        result = CliRunner().invoke(main, ["close-challenges"], env=env)
        assert result.exit_code == 0 and "closed 0 challenge(s)" in result.output
        bad = CliRunner().invoke(main, ["score-engagement", "--shop", "nope.myshopify.com"],
                                 env=env)
        assert bad.exit_code != 0
    finally:
        jobs.configure(c)
