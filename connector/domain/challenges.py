"""Challenges and contests: a time box, a metric, a target or a ranking, and prizes.

Leaderboard rule (stated, and tested): higher metric first; on equal metric, whoever reached
that value first (the time of the last order or approval that counted) ranks higher; still
equal, the lower ambassador id. Ranks are 1, 2, 3… with no shared places, so every prize has
exactly one winner. Participants with nothing yet (metric 0) are listed last and win nothing.

Prizes are bonuses in the reward ledger (kind ``bonus``, no order), one per winner, with the
deterministic idempotency key ``challenge:{id}:prize:{ambassador_id}``: closing a challenge
twice pays nobody twice. A challenge nobody joined closes with no results and no entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from connector.domain.content import storable


class Metric(StrEnum):
    REVENUE = "revenue"
    ORDERS = "orders"
    NEW_CUSTOMERS = "new_customers"
    APPROVED_CONTENT = "approved_content"


class Mode(StrEnum):
    TARGET = "target"  # everyone reaching the target wins the prize
    RANKING = "ranking"  # prizes by place


class ChallengeStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ChallengeInvalid(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Prize:
    amount: Decimal
    rank: int | None = None  # ranking: the place; target: None (everyone reaching it)
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "amount": str(self.amount), "label": self.label}


@dataclass(frozen=True)
class Challenge:
    id: int | None
    shop_id: int
    name: str
    metric: Metric
    mode: Mode
    starts_at: datetime
    ends_at: datetime
    currency: str
    target: Decimal | None = None
    prizes: tuple[Prize, ...] = ()
    preset: str | None = None
    status: ChallengeStatus = ChallengeStatus.OPEN
    results: tuple[Standing, ...] | None = None
    closed_at: datetime | None = None
    created_by: str = ""
    created_at: datetime | None = None

    def state(self, now: datetime) -> str:
        """``upcoming``, ``running``, ``ended`` (not closed yet) or ``closed``."""
        if self.status is ChallengeStatus.CLOSED:
            return "closed"
        if now < self.starts_at:
            return "upcoming"
        if now < self.ends_at:
            return "running"
        return "ended"


@dataclass(frozen=True)
class Standing:
    ambassador_id: int
    value: Decimal
    reached_at: datetime | None  # when the value was reached (None: nothing yet)
    rank: int = 0
    prize: Decimal | None = None
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ambassador_id": self.ambassador_id,
            "rank": self.rank,
            "value": str(self.value),
            "reached_at": self.reached_at.isoformat() if self.reached_at else None,
            "prize": str(self.prize) if self.prize is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standing:
        reached = data.get("reached_at")
        return cls(
            ambassador_id=int(data["ambassador_id"]),
            value=Decimal(data["value"]),
            reached_at=datetime.fromisoformat(reached) if reached else None,
            rank=int(data.get("rank") or 0),
            prize=Decimal(data["prize"]) if data.get("prize") is not None else None,
        )


_FAR = datetime.max.replace(tzinfo=UTC)


def rank(standings: Sequence[Standing]) -> list[Standing]:
    """The leaderboard: the rule in the module docstring."""
    ordered = sorted(
        standings,
        key=lambda s: (-s.value, s.reached_at or _FAR, s.ambassador_id),
    )
    return [replace(s, rank=i) for i, s in enumerate(ordered, start=1)]


def awards(challenge: Challenge, ranked: Sequence[Standing]) -> list[Standing]:
    """The ranked standings with each winner's prize set (nothing for a metric of 0)."""
    out = []
    by_rank = {p.rank: p.amount for p in challenge.prizes if p.rank is not None}
    flat = next((p.amount for p in challenge.prizes if p.rank is None), None)
    for s in ranked:
        prize = None
        if s.value > 0:
            if challenge.mode is Mode.RANKING:
                prize = by_rank.get(s.rank)
            elif challenge.target is not None and s.value >= challenge.target:
                prize = flat
        out.append(replace(s, prize=prize))
    return out


def prize_key(challenge_id: int, ambassador_id: int) -> str:
    return f"challenge:{challenge_id}:prize:{ambassador_id}"


def mask_name(first_name: str, last_name: str, ambassador_id: int) -> str:
    """A storefront-safe name: first name and last initial ("Jane D."); never the email."""
    first = first_name.strip().split(" ")[0][:20] if first_name.strip() else ""
    last = last_name.strip()[:1].upper()
    if first and last:
        return f"{first} {last}."
    if first:
        return first
    return f"Ambassador #{ambassador_id}"


# --- parsing what the merchant sends ----------------------------------------------------------


@dataclass(frozen=True)
class ChallengeInput:
    name: str
    metric: Metric
    mode: Mode
    starts_at: datetime
    ends_at: datetime
    target: Decimal | None
    prizes: tuple[Prize, ...]
    preset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


NAME_MAX = 120
MAX_PRIZES = 20
MAX_PRIZE = Decimal("100000")


def parse(data: dict[str, Any], now: datetime) -> ChallengeInput:
    """A challenge from the API body, presets expanded:

    - ``{"preset": "monthly", "month": "2026-12", "metric": ..., ...}``: that calendar month (UTC);
    - ``{"preset": "annual_most_raised", "year": 2026, "prizes": [...]}``: the year's revenue
      ranking ("Most raised 2026");
    - otherwise a named initiative with ``starts_at`` and ``ends_at``.
    """
    if not isinstance(data, dict):
        raise ChallengeInvalid("body", "must be an object")
    preset = data.get("preset")
    body = dict(data)
    if preset == "monthly":
        month = str(data.get("month") or f"{now:%Y-%m}")
        try:
            start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ChallengeInvalid("month", "YYYY-MM") from None
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(
            month=start.month + 1
        )
        body.setdefault("name", f"{start:%B %Y} challenge")
        body["starts_at"], body["ends_at"] = start.isoformat(), end.isoformat()
    elif preset == "annual_most_raised":
        year = data.get("year", now.year)
        if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2100:
            raise ChallengeInvalid("year", "a year such as 2026")
        body.setdefault("name", f"Most raised {year}")
        body["metric"], body["mode"] = Metric.REVENUE.value, Mode.RANKING.value
        body["starts_at"] = datetime(year, 1, 1, tzinfo=UTC).isoformat()
        body["ends_at"] = datetime(year + 1, 1, 1, tzinfo=UTC).isoformat()
    elif preset is not None:
        raise ChallengeInvalid("preset", "monthly or annual_most_raised")
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= NAME_MAX or not storable(name):
        raise ChallengeInvalid("name", f"1 to {NAME_MAX} characters")
    try:
        metric = Metric(str(body.get("metric")))
    except ValueError:
        raise ChallengeInvalid(
            "metric", "revenue, orders, new_customers or approved_content"
        ) from None
    try:
        mode = Mode(str(body.get("mode", Mode.RANKING.value)))
    except ValueError:
        raise ChallengeInvalid("mode", "target or ranking") from None
    starts_at = _time(body.get("starts_at"), "starts_at")
    ends_at = _time(body.get("ends_at"), "ends_at")
    if ends_at <= starts_at:
        raise ChallengeInvalid("ends_at", "must be after starts_at")
    if (ends_at - starts_at).days > 400:
        raise ChallengeInvalid("ends_at", "a challenge lasts at most 400 days")
    target = None
    if mode is Mode.TARGET:
        target = _amount(body.get("target"), "target")
        if target <= 0:
            raise ChallengeInvalid("target", "above 0")
    prizes = _prizes(body.get("prizes", []), mode)
    return ChallengeInput(
        name=name.strip(),
        metric=metric,
        mode=mode,
        starts_at=starts_at,
        ends_at=ends_at,
        target=target,
        prizes=prizes,
        preset=preset,
    )


def _prizes(raw: Any, mode: Mode) -> tuple[Prize, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_PRIZES:
        raise ChallengeInvalid("prizes", f"a list of at most {MAX_PRIZES} prizes")
    out: list[Prize] = []
    ranks: set[int] = set()
    for i, p in enumerate(raw):
        if not isinstance(p, dict):
            raise ChallengeInvalid(f"prizes[{i}]", "must be an object")
        amount = _amount(p.get("amount"), f"prizes[{i}].amount")
        if not 0 < amount <= MAX_PRIZE:
            raise ChallengeInvalid(f"prizes[{i}].amount", f"above 0 and at most {MAX_PRIZE}")
        label = p.get("label", "")
        if not isinstance(label, str) or len(label) > 200 or not storable(label):
            raise ChallengeInvalid(f"prizes[{i}].label", "text up to 200 characters")
        prize_rank = None
        if mode is Mode.RANKING:
            r = p.get("rank")
            if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 1000 or r in ranks:
                raise ChallengeInvalid(f"prizes[{i}].rank", "a distinct place from 1")
            ranks.add(r)
            prize_rank = r
        elif out:
            raise ChallengeInvalid("prizes", "a target challenge has one prize for everyone")
        out.append(Prize(amount=amount, rank=prize_rank, label=label))
    return tuple(out)


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ChallengeInvalid(name, "an ISO 8601 date-time with a zone")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ChallengeInvalid(name, "an ISO 8601 date-time with a zone") from None
    if parsed.tzinfo is None:
        raise ChallengeInvalid(name, "give a time zone (e.g. Z)")
    if not 2000 <= parsed.year <= 2100:
        raise ChallengeInvalid(name, "a date between the years 2000 and 2100")
    return parsed.astimezone(UTC)


def _amount(value: Any, name: str) -> Decimal:
    if isinstance(value, bool | float) or value is None:
        raise ChallengeInvalid(name, 'a decimal string, e.g. "50.00"')
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ChallengeInvalid(name, 'a decimal string, e.g. "50.00"') from None
    if not result.is_finite() or abs(result) >= Decimal("1e12"):
        raise ChallengeInvalid(name, 'a decimal string, e.g. "50.00"')
    return result
