"""Small value helpers shared by the emulator: ids, GIDs, money and timestamps.

Shopify conventions reproduced here:

* Resource ids are positive integers; GraphQL ids are GIDs ``gid://shopify/{Type}/{id}``.
* REST (webhook) money is a string with exactly two decimals (``"10.00"``); GraphQL ``Decimal``
  is the shortest decimal string with at least one fractional digit (``"10.0"``, ``"24.99"``).
* GraphQL ``DateTime`` is ISO 8601 in UTC with a ``Z`` (``"2026-07-01T12:00:00Z"``); REST
  timestamps carry the shop's UTC offset (``"2026-07-01T08:00:00-04:00"``).
"""

from __future__ import annotations

import itertools
import re
import threading
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

_GID = re.compile(r"^gid://shopify/(?P<type>[A-Za-z]+)/(?P<id>\d+)(?:\?.*)?$")


class IdSequence:
    """Thread-safe, deterministic source of Shopify-like integer ids (one per emulator)."""

    def __init__(self, start: int = 7_300_000_000_001) -> None:
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._counter)


def gid(type_name: str, resource_id: int) -> str:
    return f"gid://shopify/{type_name}/{resource_id}"


def parse_gid(value: object, expected_type: str | None = None) -> int | None:
    """The numeric id of a GID (or of a bare integer string); ``None`` if it is neither, or if
    it names another type than ``expected_type``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    if value.isdigit():
        return int(value)
    match = _GID.match(value)
    if match is None:
        return None
    if expected_type is not None and match["type"] != expected_type:
        return None
    return int(match["id"])


def gid_type(value: str) -> str | None:
    match = _GID.match(value) if isinstance(value, str) else None
    return match["type"] if match else None


def to_decimal(value: object, *, field: str = "amount") -> Decimal:
    """Parse a money amount given as a string, int or Decimal. A float (a JSON number) goes
    through its shortest ``repr``, never through binary arithmetic. Raises ``ValueError``
    naming ``field`` for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a decimal amount")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"{field} must be a decimal amount, got {value!r}") from exc
    elif isinstance(value, float):
        # JSON numbers arrive as floats; repr() gives the shortest exact decimal for them.
        result = Decimal(repr(value))
    else:
        raise ValueError(f"{field} must be a decimal amount, got {value!r}")
    if not result.is_finite():
        raise ValueError(f"{field} must be finite")
    return result


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def rest_money(value: Decimal) -> str:
    """``Decimal("10")`` → ``"10.00"`` (REST payload money)."""
    return f"{cents(value):.2f}"


def gql_decimal(value: Decimal) -> str:
    """``Decimal("10.00")`` → ``"10.0"``, ``Decimal("24.90")`` → ``"24.9"`` (GraphQL Decimal)."""
    text = format(value.normalize(), "f")
    if "." not in text:
        return text + ".0"
    return text


def money_v2(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": gql_decimal(amount), "currencyCode": currency}


def rest_money_set(
    shop_amount: Decimal, shop_currency: str, presentment_amount: Decimal, presentment_currency: str
) -> dict[str, dict[str, str]]:
    return {
        "shop_money": {"amount": rest_money(shop_amount), "currency_code": shop_currency},
        "presentment_money": {
            "amount": rest_money(presentment_amount),
            "currency_code": presentment_currency,
        },
    }


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def utc_from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=0)


def gql_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rest_datetime(value: datetime | None, tz: tzinfo) -> str | None:
    if value is None:
        return None
    return value.astimezone(tz).isoformat(timespec="seconds")


def parse_datetime(value: object) -> datetime | None:
    """ISO 8601 date or datetime (``Z`` or offset; naive means UTC) → aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
