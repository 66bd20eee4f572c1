"""Salesforce-style record ids: 15 case-sensitive characters plus the 3-character suffix that
makes the 18-character case-insensitive form the REST API returns.

Layout of a generated id: key prefix (3, e.g. ``003`` Contact), pod (2), reserved ``0``, and a
9-character base-62 sequence. Only the prefix and the checksum are meaningful to clients; the
rest just has to be unique within one emulator.
"""

from __future__ import annotations

import itertools
import re
import threading

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID15 = re.compile(r"^[a-zA-Z0-9]{15}$")
_ID18 = re.compile(r"^[a-zA-Z0-9]{18}$")

#: Key prefixes of the objects the emulator knows (the real ones).
PREFIX = {
    "Contact": "003",
    "User": "005",
    "Organization": "00D",
    "PermissionSet": "0PS",
    "PermissionSetAssignment": "0Pa",
    "AsyncApexJob": "707",
    "Job": "750",
    "DeployRequest": "0Af",
    "QueryLocator": "01g",
}


def checksum_suffix(id15: str) -> str:
    """The 3 characters appended to a 15-character id: one per 5-character chunk, whose bits
    say which characters of the chunk are upper-case letters."""
    suffix = ""
    for chunk in range(3):
        flags = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                flags |= 1 << position
        suffix += _SUFFIX_ALPHABET[flags]
    return suffix


def to18(record_id: str) -> str:
    """The 18-character form of a 15- or 18-character id (ValueError otherwise)."""
    if _ID18.match(record_id):
        return record_id[:15] + checksum_suffix(record_id[:15])
    if _ID15.match(record_id):
        return record_id + checksum_suffix(record_id)
    raise ValueError(f"not a Salesforce id: {record_id!r}")


def is_valid_id(value: str, prefix: str | None = None) -> bool:
    """True for a well-formed 15/18-character id (with a correct checksum when 18), optionally
    of the given key prefix."""
    if not isinstance(value, str) or not (_ID15.match(value) or _ID18.match(value)):
        return False
    if len(value) == 18 and value[15:].upper() != checksum_suffix(value[:15]):
        return False
    return prefix is None or value.startswith(prefix)


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(width, "0")


class IdFactory:
    """Thread-safe generator of unique 18-character ids per key prefix."""

    def __init__(self, pod: str = "8d") -> None:
        self._pod = pod
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, sobject: str) -> str:
        with self._lock:
            number = next(self._counter)
        id15 = PREFIX[sobject] + self._pod + "0" + _base62(number, 9)
        return id15 + checksum_suffix(id15)
