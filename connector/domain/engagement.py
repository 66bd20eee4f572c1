"""Engagement: one explainable score per ambassador, and the band it puts them in.

The score (0–100, one decimal) is a weighted sum of components, each a fraction from 0 to 1 of
what the program counts as "fully engaged" on that front over the window:

=================  ================================================  ==========================
component          raw value over the window                          full marks at
=================  ================================================  ==========================
recency            days since the last credited referral              within ``recent_days``;
                                                                      nothing left at the window
orders             credited orders                                    ``orders_target``
revenue            revenue credited (shop currency, net)              ``revenue_target``
new_customers      first-time buyers brought                          ``new_customers_target``
content            approved posts (a pending or rejected one: half)   ``content_target``
challenges         challenges joined that overlap the window          ``challenges_target``
portal_visits      days the portal was opened or a resource fetched   ``visits_target``
=================  ================================================  ==========================

``points = weight / sum(weights) × fraction × 100``; the score is the sum of the points,
rounded half-up to one decimal. So it stays within 0..100, never falls when any input improves,
and each component's share is shown with its weight. Bands: ``engaged`` from
``engaged_from``, ``marginal`` from ``marginal_from``, ``not engaged`` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any


class Band(StrEnum):
    NOT_ENGAGED = "not engaged"
    MARGINAL = "marginal"
    ENGAGED = "engaged"


COMPONENTS = (
    "recency",
    "orders",
    "revenue",
    "new_customers",
    "content",
    "challenges",
    "portal_visits",
)

#: What each component means, for the merchant (the explanation lists these).
DESCRIPTIONS: dict[str, str] = {
    "recency": "how recently a referral came in",
    "orders": "orders credited in the window",
    "revenue": "revenue credited in the window",
    "new_customers": "first-time buyers brought in the window",
    "content": "posts and reviews submitted (approved ones count double)",
    "challenges": "challenges joined",
    "portal_visits": "days the ambassador opened their portal or fetched a resource",
}

#: What an ambassador can do to raise each component (the portal's "how to rise").
ADVICE: dict[str, str] = {
    "recency": "Share your code again: a referral this week gives full marks here.",
    "orders": "Bring more orders with your code.",
    "revenue": "Bring bigger orders with your code.",
    "new_customers": "Invite friends who have never bought from us.",
    "content": "Submit a post or review that mentions the program (with #ad).",
    "challenges": "Join a challenge.",
    "portal_visits": "Visit your portal and download a resource to share.",
}


class EngagementSettingsInvalid(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"engagement.{field_name}: {message}")
        self.field = f"engagement.{field_name}"


@dataclass(frozen=True)
class EngagementSettings:
    """Weights, saturation targets and band thresholds (part of the program settings)."""

    window_days: int = 90
    recent_days: int = 14
    weights: Mapping[str, int] = field(
        default_factory=lambda: {
            "recency": 20,
            "orders": 15,
            "revenue": 15,
            "new_customers": 15,
            "content": 15,
            "challenges": 10,
            "portal_visits": 10,
        }
    )
    orders_target: int = 5
    revenue_target: Decimal = Decimal("500")
    new_customers_target: int = 3
    content_target: int = 2
    challenges_target: int = 1
    visits_target: int = 4
    marginal_from: Decimal = Decimal("25")
    engaged_from: Decimal = Decimal("60")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["weights"] = dict(self.weights)
        for key in ("revenue_target", "marginal_from", "engaged_from"):
            data[key] = str(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Any, base: EngagementSettings | None = None) -> EngagementSettings:
        """Merge ``data`` over ``base`` and validate; unknown keys are refused."""
        if not isinstance(data, dict):
            raise EngagementSettingsInvalid("settings", "must be an object")
        current = (base or cls()).to_dict()
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise EngagementSettingsInvalid(sorted(unknown)[0], "unknown setting")
        weights_in = data.get("weights", {})
        if not isinstance(weights_in, dict):
            raise EngagementSettingsInvalid("weights", "must be an object")
        bad = set(weights_in) - set(COMPONENTS)
        if bad:
            raise EngagementSettingsInvalid(f"weights.{sorted(bad)[0]}", "unknown component")
        merged = {**current, **data, "weights": {**current["weights"], **weights_in}}
        weights = {}
        for name in COMPONENTS:
            w = _int(merged["weights"].get(name, 0), f"weights.{name}")
            if not 0 <= w <= 100:
                raise EngagementSettingsInvalid(f"weights.{name}", "between 0 and 100")
            weights[name] = w
        if sum(weights.values()) == 0:
            raise EngagementSettingsInvalid("weights", "at least one weight above 0")
        window = _int(merged["window_days"], "window_days")
        if not 7 <= window <= 365:
            raise EngagementSettingsInvalid("window_days", "between 7 and 365")
        recent = _int(merged["recent_days"], "recent_days")
        if not 1 <= recent < window:
            raise EngagementSettingsInvalid("recent_days", "at least 1 and below window_days")
        targets = {}
        for name in (
            "orders_target",
            "new_customers_target",
            "content_target",
            "challenges_target",
            "visits_target",
        ):
            value = _int(merged[name], name)
            if not 1 <= value <= 100_000:
                raise EngagementSettingsInvalid(name, "between 1 and 100000")
            targets[name] = value
        revenue = _decimal(merged["revenue_target"], "revenue_target")
        if revenue <= 0:
            raise EngagementSettingsInvalid("revenue_target", "above 0")
        marginal = _decimal(merged["marginal_from"], "marginal_from")
        engaged = _decimal(merged["engaged_from"], "engaged_from")
        if not 0 < marginal < engaged <= 100:
            raise EngagementSettingsInvalid(
                "engaged_from", "thresholds must satisfy 0 < marginal_from < engaged_from <= 100"
            )
        return cls(
            window_days=window,
            recent_days=recent,
            weights=weights,
            revenue_target=revenue,
            marginal_from=marginal,
            engaged_from=engaged,
            **targets,
        )


@dataclass(frozen=True)
class Activity:
    """What an ambassador did over the window (inputs of the score)."""

    days_since_referral: int | None = None  # None: no referral in the window
    orders: int = 0
    revenue: Decimal = Decimal(0)
    new_customers: int = 0
    content_submitted: int = 0  # every submission, approved ones included
    content_approved: int = 0
    challenges: int = 0
    portal_visits: int = 0


@dataclass(frozen=True)
class Component:
    name: str
    weight: int
    value: str  # the raw input, as text (a decimal, a count, or days)
    fraction: Decimal  # 0..1 of full marks
    points: Decimal  # what it adds to the score (two decimals)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": DESCRIPTIONS[self.name],
            "weight": self.weight,
            "value": self.value,
            "fraction": str(self.fraction.quantize(Decimal("0.001"))),
            "points": str(self.points.quantize(Decimal("0.01"))),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Component:
        return cls(
            name=str(data["name"]),
            weight=int(data["weight"]),
            value=str(data["value"]),
            fraction=Decimal(str(data["fraction"])),
            points=Decimal(str(data["points"])),
        )


@dataclass(frozen=True)
class Score:
    score: Decimal  # 0..100, one decimal
    band: Band
    components: tuple[Component, ...]

    def advice(self, limit: int = 3) -> list[str]:
        """What would raise the score most: components with the most points still missing."""
        total = sum(c.weight for c in self.components) or 1
        missing = sorted(
            (
                (Decimal(c.weight) / total * (1 - c.fraction), c.name)
                for c in self.components
                if c.weight and c.fraction < 1
            ),
            key=lambda x: (-x[0], COMPONENTS.index(x[1])),
        )
        return [ADVICE[name] for _, name in missing[:limit]]


_ONE = Decimal(1)
_TENTH = Decimal("0.1")


def _ratio(value: Decimal | int, target: Decimal | int) -> Decimal:
    if value <= 0:
        return Decimal(0)
    return min(Decimal(value) / Decimal(target), _ONE)


def fractions(activity: Activity, s: EngagementSettings) -> dict[str, tuple[str, Decimal]]:
    """Each component's raw value (as text) and its fraction of full marks."""
    days = activity.days_since_referral
    if days is None or days >= s.window_days:
        recency = Decimal(0)
    elif days <= s.recent_days:
        recency = _ONE
    else:  # linear from full marks at recent_days to nothing at the window's end
        recency = Decimal(s.window_days - days) / Decimal(s.window_days - s.recent_days)
    # A submission is worth half; approval adds the other half.
    content = Decimal(activity.content_submitted + activity.content_approved) / 2
    return {
        "recency": ("none" if days is None else str(days), recency),
        "orders": (str(activity.orders), _ratio(activity.orders, s.orders_target)),
        "revenue": (str(activity.revenue), _ratio(activity.revenue, s.revenue_target)),
        "new_customers": (
            str(activity.new_customers),
            _ratio(activity.new_customers, s.new_customers_target),
        ),
        "content": (
            f"{activity.content_approved} approved of {activity.content_submitted}",
            _ratio(content, s.content_target),
        ),
        "challenges": (str(activity.challenges), _ratio(activity.challenges, s.challenges_target)),
        "portal_visits": (
            str(activity.portal_visits),
            _ratio(activity.portal_visits, s.visits_target),
        ),
    }


def band_for(score: Decimal, s: EngagementSettings) -> Band:
    if score >= s.engaged_from:
        return Band.ENGAGED
    if score >= s.marginal_from:
        return Band.MARGINAL
    return Band.NOT_ENGAGED


def score(activity: Activity, s: EngagementSettings) -> Score:
    """The explainable score of one ambassador's activity."""
    total = Decimal(sum(s.weights.get(n, 0) for n in COMPONENTS))
    parts = []
    raw_sum = Decimal(0)
    for name, (value, fraction) in fractions(activity, s).items():
        weight = s.weights.get(name, 0)
        points = Decimal(weight) * 100 * fraction / total
        raw_sum += points
        parts.append(Component(name, weight, value, fraction, points))
    result = min(raw_sum.quantize(_TENTH, rounding=ROUND_HALF_UP), Decimal(100))
    return Score(result, band_for(result, s), tuple(parts))


@dataclass(frozen=True)
class BandCounts:
    not_engaged: int = 0
    marginal: int = 0
    engaged: int = 0

    @property
    def total(self) -> int:
        return self.not_engaged + self.marginal + self.engaged

    def shares(self) -> dict[str, str]:
        """Each band's share in percent (one decimal); all zero when nobody is scored."""
        total = self.total
        out = {}
        for band, count in (
            (Band.NOT_ENGAGED, self.not_engaged),
            (Band.MARGINAL, self.marginal),
            (Band.ENGAGED, self.engaged),
        ):
            share = Decimal(count * 100) / total if total else Decimal(0)
            out[band.value] = str(share.quantize(_TENTH, rounding=ROUND_HALF_UP))
        return out

    def counts(self) -> dict[str, int]:
        return {
            Band.NOT_ENGAGED.value: self.not_engaged,
            Band.MARGINAL.value: self.marginal,
            Band.ENGAGED.value: self.engaged,
        }

    @classmethod
    def of(cls, bands: list[Band]) -> BandCounts:
        return cls(
            not_engaged=sum(1 for b in bands if b is Band.NOT_ENGAGED),
            marginal=sum(1 for b in bands if b is Band.MARGINAL),
            engaged=sum(1 for b in bands if b is Band.ENGAGED),
        )


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise EngagementSettingsInvalid(name, "must be an integer")
    try:
        return int(value)
    except ValueError:
        raise EngagementSettingsInvalid(name, "must be an integer") from None


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool | float):
        raise EngagementSettingsInvalid(name, 'give decimals as strings, e.g. "12.50"')
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise EngagementSettingsInvalid(name, "must be a decimal number") from None
    if not result.is_finite():
        raise EngagementSettingsInvalid(name, "must be a decimal number")
    return result
