"""Ambassadors and their lifecycle: applied → active → paused → removed (and back)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class AmbassadorStatus(StrEnum):
    APPLIED = "applied"
    ACTIVE = "active"
    PAUSED = "paused"
    REMOVED = "removed"


#: Allowed moves. Removed people can be brought back (re-activated by the merchant, or
#: re-applying after the waiting period).
TRANSITIONS: dict[AmbassadorStatus, frozenset[AmbassadorStatus]] = {
    AmbassadorStatus.APPLIED: frozenset({AmbassadorStatus.ACTIVE, AmbassadorStatus.REMOVED}),
    AmbassadorStatus.ACTIVE: frozenset({AmbassadorStatus.PAUSED, AmbassadorStatus.REMOVED}),
    AmbassadorStatus.PAUSED: frozenset({AmbassadorStatus.ACTIVE, AmbassadorStatus.REMOVED}),
    AmbassadorStatus.REMOVED: frozenset({AmbassadorStatus.ACTIVE, AmbassadorStatus.APPLIED}),
}


class CodeState(StrEnum):
    NONE = "none"  # no code yet (applicants)
    PENDING = "pending"  # reserved here, not yet confirmed in Shopify
    ACTIVE = "active"  # redeemable in Shopify
    INACTIVE = "inactive"  # deactivated because the ambassador is paused or removed
    MISSING = "missing"  # drift: deleted or changed in Shopify behind our back


class InvalidTransition(ValueError):
    def __init__(self, current: AmbassadorStatus, wanted: AmbassadorStatus) -> None:
        super().__init__(f"an ambassador who is {current.value} cannot become {wanted.value}")
        self.current, self.wanted = current, wanted


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidEmail(ValueError):
    pass


def normalise_email(value: str | None) -> str:
    """Trimmed and lower-cased; the identity we deduplicate enrolments on."""
    email = (value or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidEmail(f"not an email address: {value!r}")
    return email


@dataclass(frozen=True)
class Ambassador:
    id: int | None
    shop_id: int
    email: str
    status: AmbassadorStatus
    first_name: str = ""
    last_name: str = ""
    customer_id: int | None = None
    tier_id: int | None = None
    tier_locked: bool = False
    demotion_pending_since: datetime | None = None
    code: str | None = None
    code_state: CodeState = CodeState.NONE
    discount_gid: str | None = None
    redeem_code_gid: str | None = None
    source: str = "api"
    social: dict[str, str] = field(default_factory=dict)
    since: datetime | None = None  # first activation
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0  # bumped on every change; the Salesforce sync compares it

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def moved_to(self, status: AmbassadorStatus, now: datetime) -> Ambassador:
        if status == self.status:
            return self
        if status not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, status)
        since = self.since or (now if status is AmbassadorStatus.ACTIVE else None)
        return replace(self, status=status, since=since, updated_at=now)

    @property
    def code_should_be_active(self) -> bool:
        return self.status is AmbassadorStatus.ACTIVE


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to an ambassador, and why. Appended, never edited."""

    ambassador_id: int
    kind: str  # status | tier | code | enrol
    actor: str  # "merchant:<user id>", "system", "shopify", "applicant"
    at: datetime
    before: str | None = None
    after: str | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
