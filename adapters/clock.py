"""Clocks: the system clock, and a settable one for tests."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


class SecretsIdGenerator:
    """Random identifiers from the operating system's CSPRNG (``secrets``)."""

    def token(self, nbytes: int = 32) -> str:
        return secrets.token_urlsafe(nbytes)
