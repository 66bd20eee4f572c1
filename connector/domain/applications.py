"""Applications: how people ask to join the program, how a committee decides, what they are told.

Pure rules, no I/O:
- :func:`parse_submission` turns what a person typed on the storefront into a validated
  :class:`Submission`, or raises :class:`InvalidApplication` naming every bad field at once.
- :func:`client_fingerprint` is the keyed hash of a client address that rate limits count on
  (raw addresses are never stored).
- :func:`approvals` counts a committee's approve votes (one per reviewer).
- ``*_message`` functions write what the applicant is sent at each step.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from urllib.parse import quote, urlsplit

from connector.domain.ambassadors import InvalidEmail, normalise_email
from connector.domain.program import ApplicationQuestion


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class VoteChoice(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


# --- abuse limits ---------------------------------------------------------------------------
# Counted in the database (the applications table), so they hold with any number of web
# processes and without Redis. A person filling the form by hand applies once; a household or
# an office behind one address might send a few; five an hour from one address is already far
# beyond that and far below what a script would want. Per email, three a day covers a typo'd
# retry after a rejection with no waiting period, and stops mail-bombing one inbox with our
# "application received" messages.
MAX_PER_CLIENT_PER_HOUR = 5
CLIENT_WINDOW = timedelta(hours=1)
MAX_PER_EMAIL_PER_DAY = 3
EMAIL_WINDOW = timedelta(days=1)

# --- field limits (the form's maxlength attributes use the same numbers) ---------------------
NAME_MAX = 120  # the ambassadors table's name columns
TEXT_MAX = 300
TEXTAREA_MAX = 2000
URL_MAX = 500
WEBSITE_MAX = 200
COMMENT_MAX = 1000
REASON_MAX = 1000

SOCIAL_NETWORKS: tuple[str, ...] = ("instagram", "tiktok", "youtube", "website")
SOCIAL_LABELS: Mapping[str, str] = {
    "instagram": "Instagram",
    "tiktok": "TikTok",
    "youtube": "YouTube",
    "website": "Website or blog",
}


class InvalidApplication(ValueError):
    """The submission cannot be accepted. ``errors`` maps each bad field (``first_name``,
    ``email``, ``answers.<question id>``, ``social.<network>``) to a message for the person."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Answer:
    """An answer, with the question as the applicant saw it (labels may change later)."""

    id: str
    label: str
    answer: str


@dataclass(frozen=True)
class Submission:
    """A validated application form. ``email`` and names are empty when the applicant is a
    signed-in customer (their Shopify account says who they are)."""

    first_name: str
    last_name: str
    email: str
    answers: tuple[Answer, ...]
    social: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Application:
    id: int | None
    shop_id: int
    ambassador_id: int
    email: str
    status: ApplicationStatus
    customer_id: int | None = None
    answers: tuple[Answer, ...] = ()
    social: dict[str, str] = field(default_factory=dict)
    tier_id: int | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    client_hash: str | None = None
    created_at: datetime | None = None
    # The applicant's name lives on their ambassador record; read with the application.
    first_name: str = ""
    last_name: str = ""

    @property
    def pending(self) -> bool:
        return self.status is ApplicationStatus.PENDING


@dataclass(frozen=True)
class ApplicationVote:
    reviewer: str  # "merchant:<user id>"
    choice: VoteChoice
    at: datetime
    comment: str | None = None


def approvals(votes: Iterable[ApplicationVote]) -> int:
    """Approve votes, one per reviewer (the store keeps a reviewer's latest vote only)."""
    return len({v.reviewer for v in votes if v.choice is VoteChoice.APPROVE})


def reapply_from(removed_at: datetime, reapply_after_days: int) -> datetime:
    """When someone turned away (or removed) at ``removed_at`` may apply again."""
    return removed_at + timedelta(days=reapply_after_days)


# --- validation -----------------------------------------------------------------------------

# C0 controls (but tab and newline in multi-line text), DEL, C1 controls, and the Unicode
# line/paragraph separators: nothing a person types on purpose, and NUL breaks PostgreSQL text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_HANDLE = {
    # Instagram: letters, digits, '.', '_', at most 30. TikTok: the same set, 2 to 24.
    # YouTube handles: letters, digits, '.', '_', '-', 3 to 30.
    "instagram": re.compile(r"^[A-Za-z0-9._]{1,30}$"),
    "tiktok": re.compile(r"^[A-Za-z0-9._]{2,24}$"),
    "youtube": re.compile(r"^[A-Za-z0-9._-]{3,30}$"),
}
_HOSTS = {
    "instagram": ("instagram.com", "www.instagram.com"),
    "tiktok": ("tiktok.com", "www.tiktok.com"),
    "youtube": ("youtube.com", "www.youtube.com", "m.youtube.com"),
}


def _text(value: str | None, limit: int, *, multiline: bool = False) -> str:
    text = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if (_CONTROL if multiline else _CONTROL_SINGLE_LINE).search(text):
        raise ValueError("contains characters that cannot be used here")
    if len(text) > limit:
        raise ValueError(f"at most {limit} characters")
    return text


def normalise_url(value: str, limit: int = URL_MAX) -> str:
    """An http(s) link with a real host name; ``example.com`` becomes ``https://example.com``.
    Raises ``ValueError`` for anything else (``javascript:``, credentials, spaces)."""
    text = _text(value, limit)
    if not re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        if ":" in text.split("/", 1)[0] and not re.match(r"^[^/:]+:\d+(/|$)", text):
            raise ValueError("give a web address starting with https://")
        text = f"https://{text}"
    if len(text) > limit:
        raise ValueError(f"at most {limit} characters")
    if any(ch.isspace() for ch in text):
        raise ValueError("a web address has no spaces")
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("not a valid web address") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("give a web address starting with https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("not a valid web address")
    labels = host.split(".")
    if len(labels) < 2 or not all(re.fullmatch(r"[a-z0-9-]{1,63}", x) for x in labels):
        raise ValueError("not a valid web address")
    return text


def normalise_social(network: str, value: str) -> str:
    """A handle without its ``@`` (a pasted profile link works too); the website as a URL.
    Raises ``ValueError`` with a message for the person."""
    text = _text(value, URL_MAX)
    if network == "website":
        return normalise_url(text, WEBSITE_MAX)
    hosts = _HOSTS[network]
    lowered = text.lower()
    if "/" in text or lowered.startswith(hosts):
        url = text if "://" in text else f"https://{text}"
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ValueError(f"not a {SOCIAL_LABELS[network]} handle or profile link") from None
        if (parts.hostname or "") not in hosts:
            raise ValueError(f"not a {SOCIAL_LABELS[network]} handle or profile link")
        segments = [s for s in parts.path.split("/") if s]
        if not segments:
            raise ValueError(f"not a {SOCIAL_LABELS[network]} handle or profile link")
        text = segments[0]
        if network == "youtube" and not text.startswith("@"):
            # /channel/ID, /c/name, /user/name: keep the link as given (no handle in it).
            return normalise_url(url, WEBSITE_MAX)
    handle = text.removeprefix("@")
    if not _HANDLE[network].match(handle):
        raise ValueError(f"not a valid {SOCIAL_LABELS[network]} handle")
    return handle


def parse_submission(
    *,
    first_name: str | None,
    last_name: str | None,
    email: str | None,
    answers: Mapping[str, str],
    social: Mapping[str, str],
    questions: Sequence[ApplicationQuestion],
    identity_known: bool,
) -> Submission:
    """Validate a storefront application. Names and email are required unless
    ``identity_known`` (a signed-in customer), in which case they are ignored. Only the
    program's questions are read; required ones must be answered. Every field is trimmed and
    length-limited; empty social fields are left out."""
    errors: dict[str, str] = {}
    first = last = mail = ""
    if not identity_known:
        try:
            first = _text(first_name, NAME_MAX)
            if not first:
                errors["first_name"] = "please tell us your first name"
        except ValueError as exc:
            errors["first_name"] = str(exc)
        try:
            last = _text(last_name, NAME_MAX)
        except ValueError as exc:
            errors["last_name"] = str(exc)
        if not (email or "").strip():
            errors["email"] = "please give your email address"
        else:
            try:
                mail = normalise_email(_text(email, 254))
            except (ValueError, InvalidEmail):
                errors["email"] = "this does not look like an email address"
    given: list[Answer] = []
    for q in questions:
        key = f"answers.{q.id}"
        limit = {"textarea": TEXTAREA_MAX, "url": URL_MAX}.get(q.kind, TEXT_MAX)
        try:
            text = _text(answers.get(q.id), limit, multiline=q.kind == "textarea")
            if text and q.kind == "url":
                text = normalise_url(text)
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        if not text:
            if q.required:
                errors[key] = "this question needs an answer"
            continue
        given.append(Answer(q.id, q.label, text))
    handles: dict[str, str] = {}
    for network in SOCIAL_NETWORKS:
        raw = social.get(network)
        if raw is None or not raw.strip():
            continue
        try:
            handles[network] = normalise_social(network, raw)
        except ValueError as exc:
            errors[f"social.{network}"] = str(exc)
    if errors:
        raise InvalidApplication(errors)
    return Submission(first, last, mail, tuple(given), handles)


def clean_reason(value: object, *, required: bool, limit: int = REASON_MAX) -> str | None:
    """A reviewer's reason or comment: text, trimmed, at most ``limit`` characters."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError("is required")
        return None
    if not isinstance(value, str):
        raise ValueError("must be text")
    return _text(value, limit, multiline=True)


# --- client addresses -----------------------------------------------------------------------


def client_fingerprint(key: str, address: str | None) -> str:
    """Keyed hash (HMAC-SHA256, hex) of a client address, for rate limits only.

    IPv6 clients are counted per /64 (one household or phone gets a whole /64, so counting
    single addresses would let one person rotate through millions). Anything unparseable
    counts as one shared "unknown" client: a broken address never escapes the limit.
    """
    subject = "unknown"
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        ip = None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        subject = str(ipaddress.IPv6Network((ip, 64), strict=False))
    elif ip is not None:
        subject = str(ip)
    return hmac.new(key.encode(), f"client:{subject}".encode(), hashlib.sha256).hexdigest()


# --- messages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """An outbox message. ``key`` makes it idempotent: one message per event."""

    key: str
    to: str
    subject: str
    body: str


def share_url(shop_domain: str, code: str) -> str:
    """Shopify's shareable discount link: applies the code and lands on the home page."""
    return f"https://{shop_domain}/discount/{quote(code, safe='')}?redirect=%2F"


def _greeting(first_name: str) -> str:
    return f"Hi {first_name}," if first_name else "Hello,"


def received_message(application: Application, shop_name: str) -> Message:
    return Message(
        key=f"application:{application.id}:received",
        to=application.email,
        subject=f"We received your ambassador application to {shop_name}",
        body=(
            f"{_greeting(application.first_name)}\n\n"
            f"Thank you for applying to become an ambassador for {shop_name}. "
            "Our team reviews every application by hand; we will write to you at this "
            "address as soon as we have decided.\n"
        ),
    )


def approved_message(
    application: Application, shop_name: str, shop_domain: str, code: str
) -> Message:
    return Message(
        key=f"application:{application.id}:approved",
        to=application.email,
        subject=f"Welcome to the {shop_name} ambassador program",
        body=(
            f"{_greeting(application.first_name)}\n\n"
            f"You're in! Your personal code is {code}. Friends who use it at checkout get "
            "your discount, and you get the credit. Share this link and the code applies "
            f"itself:\n{share_url(shop_domain, code)}\n"
        ),
    )


def rejected_message(
    application: Application, shop_name: str, reason: str, reapply_on: date
) -> Message:
    return Message(
        key=f"application:{application.id}:rejected",
        to=application.email,
        subject=f"Your ambassador application to {shop_name}",
        body=(
            f"{_greeting(application.first_name)}\n\n"
            f"Thank you for applying to become an ambassador for {shop_name}. "
            "We are not able to accept your application this time.\n\n"
            f"Reason: {reason}\n\n"
            f"You are welcome to apply again from {reapply_on.isoformat()}.\n"
        ),
    )
