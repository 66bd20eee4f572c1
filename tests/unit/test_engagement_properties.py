"""The engagement score's invariants (Hypothesis): within 0..100 with one decimal, never lower
when any input improves, bands consistent with the thresholds, points adding up to the score."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.domain.engagement import (
    COMPONENTS,
    Activity,
    Band,
    BandCounts,
    EngagementSettings,
    EngagementSettingsInvalid,
    band_for,
    score,
)

counts = st.integers(min_value=0, max_value=500)
activities = st.builds(
    Activity,
    days_since_referral=st.one_of(st.none(), st.integers(min_value=0, max_value=400)),
    orders=counts,
    revenue=st.decimals(min_value=0, max_value=100_000, places=2),
    new_customers=counts,
    content_submitted=counts,
    content_approved=counts,
    challenges=counts,
    portal_visits=counts,
).map(
    # approved submissions are among the submitted ones
    lambda a: replace(a, content_submitted=max(a.content_submitted, a.content_approved))
)


@st.composite
def configs(draw: st.DrawFn) -> EngagementSettings:
    weights = {n: draw(st.integers(min_value=0, max_value=100)) for n in COMPONENTS}
    if not any(weights.values()):
        weights["orders"] = 1
    window = draw(st.integers(min_value=7, max_value=365))
    marginal = draw(st.integers(min_value=1, max_value=98))
    engaged = draw(st.integers(min_value=marginal + 1, max_value=100))
    return EngagementSettings(
        window_days=window,
        recent_days=draw(st.integers(min_value=1, max_value=window - 1)),
        weights=weights,
        orders_target=draw(st.integers(min_value=1, max_value=50)),
        revenue_target=Decimal(draw(st.integers(min_value=1, max_value=5000))),
        new_customers_target=draw(st.integers(min_value=1, max_value=50)),
        content_target=draw(st.integers(min_value=1, max_value=50)),
        challenges_target=draw(st.integers(min_value=1, max_value=10)),
        visits_target=draw(st.integers(min_value=1, max_value=60)),
        marginal_from=Decimal(marginal),
        engaged_from=Decimal(engaged),
    )


@settings(max_examples=300)
@given(activities, configs())
def test_score_is_between_0_and_100_with_one_decimal(activity, config):
    result = score(activity, config)
    assert Decimal(0) <= result.score <= Decimal(100)
    assert result.score == result.score.quantize(Decimal("0.1"))
    assert {c.name for c in result.components} == set(COMPONENTS)
    # the explanation adds up: the points are the score before rounding
    total = sum(c.points for c in result.components)
    assert abs(total - result.score) <= Decimal("0.05")


IMPROVEMENTS = {
    "recency": lambda a, n: replace(
        a,
        days_since_referral=max(
            (400 if a.days_since_referral is None else a.days_since_referral) - n, 0
        ),
    ),
    "orders": lambda a, n: replace(a, orders=a.orders + n),
    "revenue": lambda a, n: replace(a, revenue=a.revenue + n),
    "new_customers": lambda a, n: replace(a, new_customers=a.new_customers + n),
    "submitted": lambda a, n: replace(a, content_submitted=a.content_submitted + n),
    "approved": lambda a, n: replace(
        a, content_approved=a.content_approved + n, content_submitted=a.content_submitted + n
    ),
    "approval_of_pending": lambda a, n: replace(
        a, content_approved=min(a.content_approved + n, a.content_submitted)
    ),
    "challenges": lambda a, n: replace(a, challenges=a.challenges + n),
    "portal_visits": lambda a, n: replace(a, portal_visits=a.portal_visits + n),
}


@settings(max_examples=400)
@given(
    activities,
    configs(),
    st.sampled_from(sorted(IMPROVEMENTS)),
    st.integers(min_value=1, max_value=200),
)
def test_score_never_falls_when_one_component_improves(activity, config, which, step):
    better = IMPROVEMENTS[which](activity, step)
    assert score(better, config).score >= score(activity, config).score


@settings(max_examples=300)
@given(activities, configs())
def test_band_is_the_one_the_thresholds_give(activity, config):
    result = score(activity, config)
    if result.score >= config.engaged_from:
        assert result.band is Band.ENGAGED
    elif result.score >= config.marginal_from:
        assert result.band is Band.MARGINAL
    else:
        assert result.band is Band.NOT_ENGAGED


scores = st.decimals(min_value=0, max_value=100, places=1)


@given(scores, scores)
def test_a_higher_score_is_never_in_a_lower_band(a, b):
    config = EngagementSettings()
    order = [Band.NOT_ENGAGED, Band.MARGINAL, Band.ENGAGED]
    low, high = sorted((a, b))
    assert order.index(band_for(low, config)) <= order.index(band_for(high, config))


def test_nothing_done_is_zero_and_everything_done_is_100():
    config = EngagementSettings()
    assert score(Activity(), config).score == Decimal(0)
    assert score(Activity(), config).band is Band.NOT_ENGAGED
    full = Activity(
        days_since_referral=0,
        orders=5,
        revenue=Decimal(500),
        new_customers=3,
        content_submitted=2,
        content_approved=2,
        challenges=1,
        portal_visits=4,
    )
    result = score(full, config)
    assert result.score == Decimal(100)
    assert result.band is Band.ENGAGED
    assert result.advice() == []


def test_recency_fades_linearly_after_the_recent_days():
    config = EngagementSettings(window_days=90, recent_days=10, weights={"recency": 1})
    assert score(Activity(days_since_referral=10), config).score == Decimal(100)
    assert score(Activity(days_since_referral=50), config).score == Decimal(50)
    assert score(Activity(days_since_referral=90), config).score == Decimal(0)
    assert score(Activity(days_since_referral=None), config).score == Decimal(0)


def test_advice_names_the_components_with_most_points_missing_first():
    config = EngagementSettings()
    result = score(Activity(days_since_referral=1, orders=5), config)
    advice = result.advice()
    assert len(advice) == 3
    assert "Share your code" not in " ".join(advice)  # recency is full
    assert advice[0].startswith("Bring bigger orders")  # revenue: 15 points missing, first


def test_settings_validation_names_the_field():
    with pytest.raises(EngagementSettingsInvalid) as e:
        EngagementSettings.from_dict({"weights": {"followers": 5}})
    assert e.value.field == "engagement.weights.followers"
    with pytest.raises(EngagementSettingsInvalid) as e:
        EngagementSettings.from_dict({"marginal_from": "70", "engaged_from": "60"})
    assert e.value.field == "engagement.engaged_from"
    with pytest.raises(EngagementSettingsInvalid):
        EngagementSettings.from_dict({"weights": dict.fromkeys(COMPONENTS, 0)})
    changed = EngagementSettings.from_dict({"weights": {"orders": 40}, "revenue_target": "250"})
    assert changed.weights["orders"] == 40 and changed.weights["recency"] == 20
    assert changed.revenue_target == Decimal(250)
    assert EngagementSettings.from_dict(changed.to_dict()) == changed


def test_band_shares_add_up_and_are_zero_when_nobody_is_scored():
    assert BandCounts().shares() == {"not engaged": "0.0", "marginal": "0.0", "engaged": "0.0"}
    shares = BandCounts(not_engaged=1, marginal=1, engaged=1).shares()
    assert shares == {"not engaged": "33.3", "marginal": "33.3", "engaged": "33.3"}
    assert BandCounts(2, 1, 1).shares()["not engaged"] == "50.0"
