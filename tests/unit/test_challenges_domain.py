"""Challenges: the leaderboard's tie rule, prizes by place or target, presets, masking, and
input validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.domain.challenges import (
    Challenge,
    ChallengeInvalid,
    Metric,
    Mode,
    Prize,
    Standing,
    awards,
    mask_name,
    parse,
    prize_key,
    rank,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_ties_go_to_whoever_reached_the_value_first_then_to_the_lower_id():
    standings = [
        Standing(7, Decimal(100), T0 + timedelta(days=3)),
        Standing(3, Decimal(100), T0 + timedelta(days=3)),
        Standing(5, Decimal(100), T0 + timedelta(days=1)),
        Standing(9, Decimal(250), T0 + timedelta(days=9)),
        Standing(2, Decimal(0), None),
    ]
    ranked = rank(standings)
    assert [(s.ambassador_id, s.rank) for s in ranked] == [(9, 1), (5, 2), (3, 3), (7, 4), (2, 5)]


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10_000),
            st.integers(min_value=0, max_value=5),
            st.integers(min_value=0, max_value=5),
        ),
        unique_by=lambda x: x[0],
        max_size=30,
    ),
    st.randoms(),
)
def test_the_ranking_does_not_depend_on_input_order_and_places_are_distinct(rows, rnd):
    standings = [
        Standing(aid, Decimal(v), T0 + timedelta(hours=h) if v else None) for aid, v, h in rows
    ]
    shuffled = standings[:]
    rnd.shuffle(shuffled)
    assert rank(standings) == rank(shuffled)
    assert [s.rank for s in rank(standings)] == list(range(1, len(standings) + 1))


def _challenge(mode: Mode = Mode.RANKING, **kw) -> Challenge:
    return Challenge(
        id=1, shop_id=1, name="December", metric=Metric.REVENUE, mode=mode,
        starts_at=T0, ends_at=T0 + timedelta(days=31), currency="USD", **kw,
    )


def test_ranking_prizes_go_by_place_and_nobody_wins_with_nothing():
    challenge = _challenge(
        prizes=(Prize(Decimal(50), 1), Prize(Decimal(20), 2), Prize(Decimal(5), 3))
    )
    ranked = rank(
        [Standing(1, Decimal(10), T0), Standing(2, Decimal(30), T0), Standing(3, Decimal(0), None)]
    )
    result = {s.ambassador_id: s.prize for s in awards(challenge, ranked)}
    assert result == {2: Decimal(50), 1: Decimal(20), 3: None}


def test_target_prize_goes_to_everyone_reaching_the_target():
    challenge = _challenge(Mode.TARGET, target=Decimal(100), prizes=(Prize(Decimal(15)),))
    ranked = rank([Standing(1, Decimal(100), T0), Standing(2, Decimal("99.99"), T0),
                   Standing(3, Decimal(400), T0)])
    result = {s.ambassador_id: s.prize for s in awards(challenge, ranked)}
    assert result == {1: Decimal(15), 2: None, 3: Decimal(15)}


def test_prize_keys_are_deterministic():
    assert prize_key(12, 34) == "challenge:12:prize:34"


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("Jane", "Doe", "Jane D."),
        ("jane marie", "doe", "jane D."),
        ("Jane", "", "Jane"),
        ("", "", "Ambassador #4"),
        ("<script>", "<b>", "<script> <."),  # masked, not escaped: templates escape
    ],
)
def test_storefront_names_are_masked(first, last, expected):
    assert mask_name(first, last, 4) == expected


def test_the_monthly_preset_is_that_calendar_month():
    parsed = parse({"preset": "monthly", "month": "2026-12", "metric": "orders",
                    "prizes": [{"rank": 1, "amount": "25"}]}, T0)
    assert parsed.starts_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert parsed.ends_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert parsed.name == "December 2026 challenge"
    assert parsed.mode is Mode.RANKING


def test_the_annual_most_raised_award_is_a_revenue_ranking_over_the_year():
    prizes = [{"rank": 1, "amount": "500", "label": "Ambassador of the year"}]
    parsed = parse({"preset": "annual_most_raised", "year": 2026, "prizes": prizes}, T0)
    assert parsed.name == "Most raised 2026"
    assert (parsed.metric, parsed.mode) == (Metric.REVENUE, Mode.RANKING)
    assert parsed.starts_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert parsed.ends_at == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "metric": "likes", "starts_at": "2026-12-01T00:00:00Z",
          "ends_at": "2026-12-31T00:00:00Z"}, "metric"),
        ({"name": "x", "metric": "orders", "starts_at": "2026-12-31T00:00:00Z",
          "ends_at": "2026-12-01T00:00:00Z"}, "ends_at"),
        ({"name": "x", "metric": "orders", "starts_at": "2026-12-01T00:00:00",
          "ends_at": "2026-12-31T00:00:00Z"}, "starts_at"),
        ({"name": "x", "metric": "orders", "mode": "target", "starts_at": "2026-12-01T00:00:00Z",
          "ends_at": "2026-12-31T00:00:00Z"}, "target"),
        ({"name": "x", "metric": "orders", "starts_at": "2026-12-01T00:00:00Z",
          "ends_at": "2026-12-31T00:00:00Z", "prizes": [{"rank": 1, "amount": 5.5}]},
         "prizes[0].amount"),
        ({"name": "x", "metric": "orders", "starts_at": "2026-12-01T00:00:00Z",
          "ends_at": "2026-12-31T00:00:00Z",
          "prizes": [{"rank": 1, "amount": "5"}, {"rank": 1, "amount": "3"}]}, "prizes[1].rank"),
        ({"preset": "weekly"}, "preset"),
        ({"preset": "monthly", "month": "December", "metric": "orders"}, "month"),
        ({"name": "", "metric": "orders", "starts_at": "2026-12-01T00:00:00Z",
          "ends_at": "2026-12-31T00:00:00Z"}, "name"),
    ],
)
def test_bad_challenges_are_refused_naming_the_field(body, field):
    with pytest.raises(ChallengeInvalid) as e:
        parse(body, T0)
    assert e.value.field == field

