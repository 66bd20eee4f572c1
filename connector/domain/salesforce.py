"""The Salesforce side of an ambassador: which Contact fields we own, what values they get,
how a change is detected, how Salesforce's answers are classified, and the API budget.

Pure functions and values only (no I/O). Field API names are the outside contract
(shared CONTRACT.md, "Salesforce"); nothing else on a Contact is ever written, except the
name and email of a Contact we create because none matched.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote

#: The external id field: ``<shop>:<ambassador id>``, unique and case-insensitive in Salesforce.
EXTERNAL_ID = "Ambassador_Id__c"

#: Every field the connector owns on Contact, with the type the SFDX source declares.
FIELDS: dict[str, str] = {
    EXTERNAL_ID: "Text(64) External ID unique",
    "Ambassador_Status__c": "Picklist",
    "Ambassador_Tier__c": "Text(80)",
    "Ambassador_Code__c": "Text(64)",
    "Ambassador_Referral_URL__c": "URL",
    "Ambassador_Orders__c": "Number(18,0)",
    "Ambassador_Revenue__c": "Currency(16,2)",
    "Ambassador_Rewards_Earned__c": "Currency(16,2)",
    "Ambassador_Rewards_Paid__c": "Currency(16,2)",
    "Ambassador_Engagement__c": "Picklist",
    "Ambassador_Engagement_Score__c": "Number(5,1)",
    "Ambassador_Since__c": "Date",
    "Ambassador_Last_Referral__c": "Date",
}
VALUE_FIELDS = tuple(f for f in FIELDS if f != EXTERNAL_ID)

#: sObject Collections take at most 200 records per call (one API call each).
COLLECTION_SIZE = 200
#: Above this many records in one sync, Bulk API 2.0 costs fewer calls (a handful per job).
BULK_THRESHOLD = 2000
#: Email match queries stay under Salesforce's URI length limit (16,384 characters) once
#: URL-encoded, with room for the path (``/services/data/vNN.N/query?q=``).
MAX_QUERY_CHARS = 15_500

_EXTERNAL_ID_MAX = 64


def external_id(shop_domain: str, ambassador_id: int) -> str:
    """``<shop>:<id>``: stable, unique across shops. A shop domain too long for the 64-character
    field is replaced by a digest of it (still stable and unique in practice)."""
    value = f"{shop_domain}:{ambassador_id}"
    if len(value) <= _EXTERNAL_ID_MAX:
        return value
    digest = hashlib.sha256(shop_domain.encode()).hexdigest()[:40]
    return f"{digest}:{ambassador_id}"


@dataclass(frozen=True)
class AmbassadorSnapshot:
    """What the sync reads of one ambassador (the ambassador row, its tier's name and the
    ledger statistics), in one query for a whole shop."""

    ambassador_id: int
    email: str
    first_name: str
    last_name: str
    status: str
    tier: str | None
    code: str | None
    since: datetime | None
    orders: int
    revenue: Decimal
    rewards_earned: Decimal
    rewards_paid: Decimal
    last_referral_at: datetime | None
    engagement_score: Decimal | None = None  # the engagement capability is not built yet
    engagement_band: str | None = None
    erased: bool = False  # customers/redact: clear everything, unlink the Contact


def _money(value: Decimal) -> float:
    # JSON numbers: Currency(16,2) keeps two places; the float of a 2-place decimal below
    # 10^14 round-trips exactly through Salesforce's parser.
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _date(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def referral_url(shop_domain: str, code: str) -> str:
    """Shopify's shareable discount link (applies the code, lands on the home page)."""
    return f"https://{shop_domain}/discount/{quote(code, safe='')}?redirect=%2F"


def contact_values(snapshot: AmbassadorSnapshot, shop_domain: str) -> dict[str, Any]:
    """The ambassador fields as JSON values, every owned field present (``None`` clears it).

    A removed ambassador keeps the link and the status ``removed``; every other field is
    cleared (removal means the CRM no longer shows them as an ambassador). An erased one
    (``customers/redact``) has every field cleared, the external id too.
    """
    ext = external_id(shop_domain, snapshot.ambassador_id)
    if snapshot.erased:
        return {name: None for name in FIELDS}
    if snapshot.status == "removed":
        return {
            **{name: None for name in VALUE_FIELDS},
            EXTERNAL_ID: ext,
            "Ambassador_Status__c": "removed",
        }
    return {
        EXTERNAL_ID: ext,
        "Ambassador_Status__c": snapshot.status,
        "Ambassador_Tier__c": snapshot.tier[:80] if snapshot.tier else None,
        "Ambassador_Code__c": snapshot.code,
        "Ambassador_Referral_URL__c": referral_url(shop_domain, snapshot.code)
        if snapshot.code
        else None,
        "Ambassador_Orders__c": snapshot.orders,
        "Ambassador_Revenue__c": _money(snapshot.revenue),
        "Ambassador_Rewards_Earned__c": _money(snapshot.rewards_earned),
        "Ambassador_Rewards_Paid__c": _money(snapshot.rewards_paid),
        "Ambassador_Engagement__c": snapshot.engagement_band,
        "Ambassador_Engagement_Score__c": float(snapshot.engagement_score)
        if snapshot.engagement_score is not None
        else None,
        "Ambassador_Since__c": _date(snapshot.since),
        "Ambassador_Last_Referral__c": _date(snapshot.last_referral_at),
    }


def values_hash(values: Mapping[str, Any]) -> str:
    """A digest of the values as sent: equal digests mean nothing to write."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- matching existing Contacts by email ----------------------------------------------------


@dataclass(frozen=True)
class ContactMatch:
    contact_id: str
    email: str
    last_modified: str  # ISO timestamp as Salesforce sends it (sorts as text)
    ambassador_id: str | None  # the Contact's current Ambassador_Id__c


@dataclass(frozen=True)
class MatchDecision:
    contact_id: str | None  # None: no usable Contact, one is created
    note: str | None  # why, when there was a choice to make (shown to the merchant)
    conflict: bool = False  # the only Contacts with this email belong to other ambassadors


def choose_contact(ours: str, candidates: Sequence[ContactMatch]) -> MatchDecision:
    """The rule for several Contacts with one email: a Contact already carrying our external
    id wins; otherwise, of those not linked to another ambassador, the most recently modified
    (ties: the lowest Id, so the choice is stable). Contacts linked to another ambassador
    (the same person in two shops of one org) are never taken over."""
    if not candidates:
        return MatchDecision(None, None)
    for c in candidates:
        if c.ambassador_id and c.ambassador_id.lower() == ours.lower():
            return MatchDecision(c.contact_id, None)
    free = [c for c in candidates if not c.ambassador_id]
    if not free:
        taken = ", ".join(sorted(c.contact_id for c in candidates))
        return MatchDecision(
            None,
            f"every Contact with this email is linked to another ambassador ({taken})",
            conflict=True,
        )
    free.sort(key=lambda c: (c.last_modified, _neg(c.contact_id)), reverse=True)
    chosen = free[0]
    if len(candidates) == 1:
        return MatchDecision(chosen.contact_id, None)
    others = ", ".join(sorted(c.contact_id for c in candidates if c is not chosen))
    return MatchDecision(
        chosen.contact_id,
        f"{len(candidates)} Contacts have this email; used {chosen.contact_id} (most recently "
        f"modified), not {others}",
    )


def _neg(contact_id: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in contact_id)


def soql_literal(value: str) -> str:
    """A SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def email_query_batches(emails: Iterable[str], limit: int = MAX_QUERY_CHARS) -> Iterator[str]:
    """SOQL queries that find Contacts by these emails, each short enough for one GET."""
    # Every value goes through soql_literal (escaped); the field name is a constant.
    head = f"SELECT Id, Email, LastModifiedDate, {EXTERNAL_ID} FROM Contact WHERE Email IN ("  # noqa: S608
    batch: list[str] = []
    size = len(quote(head, safe="")) + 3  # and the closing parenthesis
    for email in dict.fromkeys(e.lower() for e in emails if e):
        literal = soql_literal(email)
        cost = len(quote(literal, safe="")) + 3  # as sent in the URL, with its encoded comma
        if batch and size + cost > limit:
            yield head + ",".join(batch) + ")"
            batch, size = [], len(quote(head, safe="")) + 3
        batch.append(literal)
        size += cost
    if batch:
        yield head + ",".join(batch) + ")"


T = TypeVar("T")


def chunks(items: Sequence[T], size: int = COLLECTION_SIZE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Salesforce's answers ------------------------------------------------------------------


class Outcome(StrEnum):
    """What to do about one record's (or one call's) error."""

    RETRY = "retry"  # transient: row lock, 5xx, concurrency limit; back off and try again
    PARK = "park"  # the data is refused (validation, picklist, duplicate): tell the merchant
    REAUTH = "reauth"  # session gone: refresh once; refresh refused: reconnect
    PAUSE = "pause"  # the org's daily API pool is spent: stop until it recovers
    SETUP = "setup"  # a field is missing or not writable: fix the org, then retry everything


_RETRY_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "SERVER_UNAVAILABLE",
        "REQUEST_RUNNING_TOO_LONG",
        "QUERY_TIMEOUT",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    }
)
_SETUP_CODES = frozenset(
    {
        "INVALID_FIELD",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        "NOT_FOUND",
        "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
        "INVALID_TYPE",
        "INSUFFICIENT_ACCESS_OR_READONLY",
    }
)


def classify(error_code: str, message: str = "", http_status: int | None = None) -> Outcome:
    """Classify an error (PLATFORM.md "Retry" / "Don't retry")."""
    code = (error_code or "").upper()
    if code == "REQUEST_LIMIT_EXCEEDED":
        # The same code for the daily pool and the concurrent long-request limit: only the
        # message tells them apart. The concurrent one clears in seconds.
        return Outcome.RETRY if "concurrent" in message.lower() else Outcome.PAUSE
    if code == "INVALID_SESSION_ID" or http_status == 401:
        return Outcome.REAUTH
    if code in _RETRY_CODES or (http_status is not None and http_status >= 500):
        return Outcome.RETRY
    if code in _SETUP_CODES:
        return Outcome.SETUP
    return Outcome.PARK


#: Back-off of a record whose write failed transiently: 1, 2, 4 … minutes, at most an hour.
def retry_delay(attempts: int) -> timedelta:
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


#: After this many transient failures in a row a record is parked (something is wrong with it).
MAX_ATTEMPTS = 8


# --- the API budget -----------------------------------------------------------------------

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass(frozen=True)
class ApiUsage:
    used: int
    limit: int

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 1.0


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """``Sforce-Limit-Info: api-usage=25/5000; per-app-api-usage=17/250(appName=x)`` → 25/5000
    (the org's daily pool; the per-app figure is informational)."""
    if not header:
        return None
    m = _USAGE.search(header)
    return ApiUsage(int(m.group(1)), int(m.group(2))) if m else None


#: Resume only once usage is this far below the pause threshold (no flapping at the edge).
RESUME_MARGIN = 0.05
#: How long a paused org waits before looking at its usage again (one cheap call).
PAUSE_RECHECK = timedelta(minutes=15)


def over_budget(usage: ApiUsage | None, share: float) -> bool:
    """True once the org's usage reached ``share`` of its daily pool: our sync stops there, so
    the org's other integrations keep the rest."""
    return usage is not None and usage.share >= share


def may_resume(usage: ApiUsage | None, share: float) -> bool:
    return usage is not None and usage.share < max(0.0, share - RESUME_MARGIN)


def calls_needed(records: int, *, bulk: bool = False) -> int:
    """The floor: calls to write ``records`` (collections), or a Bulk 2.0 job's fixed cost."""
    if records <= 0:
        return 0
    if bulk:
        return 6  # create, upload, close, poll, successful results, failed results
    return -(-records // COLLECTION_SIZE)


# --- the connection and the per-ambassador link ---------------------------------------------


class ConnectionStatus(StrEnum):
    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect"  # the refresh token was refused (invalid_grant)
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class FieldReport:
    """Which owned Contact fields the connected user cannot use (from describe)."""

    missing: tuple[str, ...] = ()
    not_writable: tuple[str, ...] = ()
    checked_at: datetime | None = None
    permission_set_assigned: bool | None = None  # None: not attempted
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.checked_at is not None and not self.missing and not self.not_writable

    def message(self) -> str:
        if self.checked_at is None:
            return "the Contact fields have not been checked yet"
        parts = []
        if self.missing:
            parts.append(
                "missing on Contact (or not visible to the connected user): "
                + ", ".join(self.missing)
            )
        if self.not_writable:
            parts.append(
                "not writable by the connected user (assign the Ambassador_Connector "
                "permission set): " + ", ".join(self.not_writable)
            )
        return "; ".join(parts) or "all fields present and writable"


def check_fields(described: Mapping[str, bool], now: datetime) -> FieldReport:
    """``described``: field API name → updateable, for Contact's fields (describe)."""
    missing = tuple(f for f in FIELDS if f not in described)
    not_writable = tuple(f for f in FIELDS if f in described and not described[f])
    return FieldReport(missing, not_writable, now)


@dataclass(frozen=True)
class SalesforceConnection:
    """One shop's connected org. Tokens are plaintext here; the repository encrypts them."""

    shop_id: int
    status: ConnectionStatus
    instance_url: str
    access_token: str | None
    refresh_token: str | None
    org_id: str | None = None
    user_id: str | None = None
    scope: str = ""
    connected_at: datetime | None = None
    fields: FieldReport = FieldReport()
    api_used: int | None = None
    api_limit: int | None = None
    paused_until: datetime | None = None
    pause_reason: str | None = None
    last_sync_at: datetime | None = None
    last_sync: Mapping[str, Any] | None = None  # figures of the last run
    last_error: str | None = None

    @property
    def usable(self) -> bool:
        return (
            self.status is ConnectionStatus.CONNECTED
            and bool(self.access_token)
            and bool(self.instance_url)
        )


class LinkState(StrEnum):
    SYNCED = "synced"
    RETRY = "retry"  # a transient failure: tried again from retry_at
    PARKED = "parked"  # refused by Salesforce; tried again when its values change or on retry


@dataclass(frozen=True)
class ContactLink:
    """Which Contact an ambassador lives on, and what was last written there."""

    ambassador_id: int
    contact_id: str | None = None
    synced_hash: str | None = None  # digest of the values last written successfully
    state: LinkState = LinkState.SYNCED
    failed_hash: str | None = None  # digest of the values refused (parked) or being retried
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    note: str | None = None  # e.g. which of several Contacts with the email was used
    synced_at: datetime | None = None
    erase: bool = False  # customers/redact: clear the Contact's fields, then forget it


def org_and_user(identity_url: str | None) -> tuple[str | None, str | None]:
    """The org and user ids from the token's ``id`` (``…/id/<org id>/<user id>``)."""
    if not identity_url:
        return None, None
    parts = identity_url.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-3:-2] == ["id"]:
        return parts[-2], parts[-1]
    return None, None
