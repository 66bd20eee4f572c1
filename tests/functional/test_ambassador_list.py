"""``GET /api/v1/ambassadors``: sort and band parameters, their errors, cursors bound to a sort."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from adapters.db.tables import ambassadors, engagement_scores
from tests.conftest import install_shop
from tests.tokens import session_token

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def shop(container):
    shop = install_shop(container)
    with container.engine.begin() as conn:
        for first, score, band in [
            ("Ann", "80", "engaged"),
            ("Bob", "30", "marginal"),
            ("Cy", None, None),
            ("Di", "10", "not engaged"),
        ]:
            aid = conn.execute(
                sa.insert(ambassadors)
                .values(
                    shop_id=shop.id,
                    email=f"{first.lower()}@example.com",
                    first_name=first,
                    last_name="X",
                    status="active",
                    source="manual",
                    social={},
                    created_at=NOW,
                    updated_at=NOW,
                )
                .returning(ambassadors.c.id)
            ).scalar_one()
            if score:
                conn.execute(
                    sa.insert(engagement_scores).values(
                        ambassador_id=aid,
                        shop_id=shop.id,
                        score=Decimal(score),
                        band=band,
                        components={},
                        computed_at=NOW,
                    )
                )
    return shop


def get(client, query):
    headers = {"Authorization": f"Bearer {session_token()}"}
    return client.get("/api/v1/ambassadors", query_string=query, headers=headers)


def names(response):
    assert response.status_code == 200, response.get_json()
    return [a["first_name"] for a in response.get_json()["items"]]


def test_band_filter_counts_the_unscored_as_not_engaged(client, shop):
    assert names(get(client, {"band": "engaged"})) == ["Ann"]
    assert names(get(client, {"band": "marginal"})) == ["Bob"]
    assert names(get(client, {"band": "not engaged", "sort": "name"})) == ["Cy", "Di"]


def test_sorts_by_engagement_and_name_both_ways(client, shop):
    assert names(get(client, {"sort": "-engagement"})) == ["Ann", "Bob", "Di", "Cy"]
    assert names(get(client, {"sort": "engagement"})) == ["Cy", "Di", "Bob", "Ann"]
    assert names(get(client, {"sort": "-name"})) == ["Di", "Cy", "Bob", "Ann"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"sort": "height"}, "invalid_sort"),
        ({"sort": "--name"}, "invalid_sort"),
        ({"band": "keen"}, "invalid_band"),
        ({"sort": "name", "cursor": "garbage!"}, "invalid_cursor"),
        (
            {"sort": "revenue", "cursor": "eyJzIjoicmV2ZW51ZSIsInYiOlsiTmFOIl0sImkiOjF9"},
            "invalid_cursor",
        ),
    ],
)
def test_bad_parameters_are_422_with_a_reason(client, shop, query, code):
    response = get(client, query)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code


def test_a_cursor_only_continues_the_sort_it_came_from(client, shop):
    first = get(client, {"sort": "name", "limit": 2}).get_json()
    assert first["next_cursor"]
    assert names(get(client, {"sort": "name", "limit": 2, "cursor": first["next_cursor"]})) == [
        "Cy",
        "Di",
    ]
    for other in ("-name", "engagement", "-created"):
        response = get(client, {"sort": other, "cursor": first["next_cursor"]})
        assert response.status_code == 422, other
