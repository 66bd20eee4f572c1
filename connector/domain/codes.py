"""Discount codes: normalisation, validation, generation, deterministic collision resolution.

Shopify codes are unique per shop and case-insensitive. We keep them to ``[A-Z0-9_-]`` and at
most 32 characters (PLATFORM.md), upper-case, so a code typed in any case matches one ambassador.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

MAX_LENGTH = 32
MIN_LENGTH = 4
_ALLOWED = re.compile(r"^[A-Z0-9_-]+$")
# No 0/O or 1/I: codes are read aloud and typed from screenshots.
_RANDOM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class InvalidCode(ValueError):
    """The code cannot be used; the message says why, for the merchant."""


def normalise(code: str) -> str:
    """Canonical form of a code typed by a person: trimmed, upper-case. Raises on anything
    that would not be a valid Shopify code for us (spaces inside, non-ASCII, too long)."""
    value = (code or "").strip().upper()
    if not value:
        raise InvalidCode("the code is empty")
    if any(ch.isspace() for ch in value):
        raise InvalidCode("codes cannot contain spaces")
    if not value.isascii():
        raise InvalidCode("codes can use only letters A-Z, digits, '-' and '_'")
    if not _ALLOWED.match(value):
        raise InvalidCode("codes can use only letters A-Z, digits, '-' and '_'")
    if len(value) > MAX_LENGTH:
        raise InvalidCode(f"codes are at most {MAX_LENGTH} characters")
    if len(value) < MIN_LENGTH:
        raise InvalidCode(f"codes are at least {MIN_LENGTH} characters")
    return value


def matches(typed: str, code: str) -> bool:
    """Case-insensitive equality, as Shopify applies codes at checkout."""
    return typed.strip().upper() == code.upper()


def _ascii_letters(text: str) -> str:
    """``Zoë O'Brien`` → ``ZOEOBRIEN``: accents folded, everything else dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z0-9]", "", folded.upper())


class CodeStrategy(StrEnum):
    NAME = "name"  # from the ambassador's name: AVA15, AVAMARTIN15
    RANDOM = "random"  # random letters/digits


@dataclass(frozen=True)
class CodeFormat:
    strategy: CodeStrategy = CodeStrategy.NAME
    prefix: str = ""
    suffix: str = ""
    length: int = 8  # for RANDOM: characters between prefix and suffix

    def __post_init__(self) -> None:
        for part in (self.prefix, self.suffix):
            if part and not _ALLOWED.match(part.upper()):
                raise InvalidCode("prefix and suffix can use only A-Z, digits, '-' and '_'")
        if not 4 <= self.length <= 24:
            raise InvalidCode("random code length must be between 4 and 24")


def candidates(fmt: CodeFormat, *, first_name: str, last_name: str, seed: str) -> Iterator[str]:
    """Codes to try, in order, for one ambassador. Deterministic for a given ``seed`` (the
    ambassador's stable id), so a retry after a crash proposes the same codes, and a collision
    moves to the next candidate rather than to a random one (reproducible, testable).
    """
    prefix, suffix = fmt.prefix.upper(), fmt.suffix.upper()
    room = MAX_LENGTH - len(prefix) - len(suffix)

    def fit(core: str) -> str | None:
        core = core[:room]
        code = f"{prefix}{core}{suffix}"
        return code if len(code) >= MIN_LENGTH and core else None

    if fmt.strategy is CodeStrategy.NAME:
        first, last = _ascii_letters(first_name), _ascii_letters(last_name)
        for core in (first, f"{first}{last[:1]}", f"{first}{last}"):
            if core and (code := fit(core)):
                yield code
        base = first or last or "FRIEND"
        for n in range(2, 10_000):
            if code := fit(f"{base[: max(room - len(str(n)), 1)]}{n}"):
                yield code
        return
    for n in range(10_000):
        digest = hashlib.sha256(f"{seed}:{n}".encode()).digest()
        core = "".join(_RANDOM_ALPHABET[b % len(_RANDOM_ALPHABET)] for b in digest)[: fmt.length]
        if code := fit(core):
            yield code
