"""JSON encoding and decoding with orjson (about twice as fast as the standard library on
Shopify's ~10 KB order payloads, measured in ``bench/attribution_throughput.py``'s worker),
decoding falling back to the standard library where orjson is stricter, so nothing the intake
accepted is refused here."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson


def loads(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        # e.g. integers beyond 64 bits, which the standard library (and so the intake) accepts
        return json.loads(data)


def dumps(value: Any) -> str:
    """JSON text; Decimals as strings (exact), datetimes in ISO 8601 with their offset."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
