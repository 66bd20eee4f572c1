"""Content ambassadors make (post URLs and reviews), its disclosure check, and the resources
library merchants give them.

Disclosure (FTC / ASA): a sponsored post must say so. The check passes when the submitted text
(the caption or review the ambassador pastes) contains ``#ad``, ``#sponsored``,
``paid partnership`` (any case) or the program's own disclosure text; otherwise the submission
is flagged for the merchant. It is a flag, not a verdict: the merchant decides.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit


class SubmissionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SubmissionKind(StrEnum):
    POST = "post"
    REVIEW = "review"


class ContentInvalid(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


URL_MAX = 2000
TEXT_MAX = 5000

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """Text the database can keep: no NUL (PostgreSQL refuses it) and no lone surrogate (not
    encodable as UTF-8); JSON bodies can carry both."""
    return _UNSTORABLE.search(text) is None


@dataclass(frozen=True)
class Submission:
    id: int | None
    shop_id: int
    ambassador_id: int
    kind: SubmissionKind
    url: str
    text: str
    status: SubmissionStatus = SubmissionStatus.PENDING
    disclosure_ok: bool = False
    disclosure_found: str | None = None
    reason: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def url_key(self) -> str:
        return url_key(self.url)


def normalise_url(raw: str) -> str:
    """An http(s) URL as submitted, checked; 422-worthy input raises :class:`ContentInvalid`."""
    text = (raw or "").strip()
    if (
        not text
        or len(text) > URL_MAX
        or any(ch.isspace() or not ch.isprintable() for ch in text)
    ):
        raise ContentInvalid("url", f"an http(s) URL of at most {URL_MAX} characters")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ContentInvalid("url", "an http(s) URL")
    return text


def url_key(url: str) -> str:
    """What makes two submissions the same post: scheme, ``www.``, case of the host, a trailing
    slash, the fragment and tracking parameters (``utm_*``) do not count."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    path = parts.path.rstrip("/") or "/"
    query = "&".join(
        sorted(q for q in parts.query.split("&") if q and not q.lower().startswith("utm_"))
    )
    canonical = urlunsplit(("https", host, path, query, ""))
    return hashlib.sha256(canonical.encode()).hexdigest()


_MARKERS = ("#ad", "#sponsored", "paid partnership")


def disclosure(text: str, program_text: str) -> str | None:
    """The disclosure found in ``text`` (the first marker that matches), or None (flag it).

    ``#ad`` must be a whole tag (``#adventure`` is not a disclosure)."""
    lowered = text.lower()
    for marker in (*_MARKERS, program_text.strip().lower()):
        if not marker:
            continue
        if marker.startswith("#"):
            if re.search(re.escape(marker) + r"(?![\w])", lowered):
                return marker
        elif marker in lowered:
            return marker
    return None


# --- the resources library --------------------------------------------------------------------


class ResourceKind(StrEnum):
    FLYER = "flyer"
    GRAPHIC = "graphic"
    POST = "post"  # a pre-written post: text, no file


#: What may be uploaded, by kind: content type → file name extensions.
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
}
MAX_UPLOAD = 10 * 1024 * 1024  # 10 MiB: a print-ready flyer, not a video

#: Magic numbers: the bytes must be what the name and type say (a renamed script is refused).
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


@dataclass(frozen=True)
class Resource:
    id: int | None
    shop_id: int
    title: str
    kind: ResourceKind
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    storage_key: str | None = None
    body: str | None = None
    downloads: int = 0
    created_at: datetime | None = None


def check_upload(filename: str, content_type: str, data: bytes) -> str:
    """The content type to store the file under; :class:`ContentInvalid` (field ``file``) when
    the type is not allowed, the name does not match it, the bytes are not that type, or the
    file is empty or too large (``too_large``)."""
    if not data:
        raise ContentInvalid("file", "the file is empty")
    if len(data) > MAX_UPLOAD:
        raise ContentInvalid("too_large", f"files are limited to {MAX_UPLOAD // (1024 * 1024)} MiB")
    kind = content_type.split(";")[0].strip().lower()
    extensions = ALLOWED_TYPES.get(kind)
    if extensions is None:
        raise ContentInvalid("file", "PDF, PNG, JPEG, GIF or WebP files only")
    if not filename.lower().endswith(extensions):
        raise ContentInvalid("file", f"a {kind} file's name ends in {' or '.join(extensions)}")
    if not data.startswith(_SIGNATURES[kind]):
        raise ContentInvalid("file", f"the file is not a {kind} file")
    return kind


def safe_filename(name: str) -> str:
    """A download name with nothing but letters, digits, dots, dashes and underscores."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "file"
    return cleaned[-120:]


def with_disclosure(body: str, program_text: str) -> str:
    """A pre-written post with the program's disclosure built in (added when missing)."""
    text = body.strip()
    if disclosure(text, program_text) is None:
        text = f"{text} {program_text.strip()}".strip()
    return text
