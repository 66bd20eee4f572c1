"""Shopify search syntax and Relay pagination, as the Admin API applies them to connections.

Search syntax (the ``query:`` argument) supported here: whitespace-separated terms, implicitly
ANDed; ``OR`` between terms; ``NOT term`` or ``-term`` to negate; ``field:value`` with optional
comparators ``field:>value``, ``>=``, ``<``, ``<=``; quoted values; ``value*`` prefix match;
bare words match the resource's free-text fields. Unknown fields are ignored, as Shopify does
(Shopify reports them as search warnings). Parentheses are not supported.

Pagination: ``first``/``after`` and ``last``/``before`` with opaque cursors that, like Shopify's,
encode the sort value and the id of the last row (``{"last_id":…,"last_value":…}``), so a cursor
stays valid when rows are inserted or deleted. ``first``/``last`` must be given, and be ≤ 250.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from graphql import GraphQLError

from .values import parse_datetime

T = TypeVar("T")

MAX_PAGE_SIZE = 250

#: Set while a bulk operation runs its query: connections return every row, as Shopify's bulk
#: executor does (``first``/``last`` are neither required nor applied there).
_WHOLE_CONNECTIONS: ContextVar[bool] = ContextVar("emulator_whole_connections", default=False)


@contextmanager
def whole_connections() -> Iterator[None]:
    """Within this block, :func:`paginate` ignores ``first``/``last`` and returns every row."""
    token = _WHOLE_CONNECTIONS.set(True)
    try:
        yield
    finally:
        _WHOLE_CONNECTIONS.reset(token)


_TOKEN = re.compile(r'"[^"]*"|\'[^\']*\'|\S+')
_TERM = re.compile(r"^(?P<field>[A-Za-z_][\w.]*):(?P<op>>=|<=|>|<|=)?(?P<value>.*)$")

FieldGetter = Callable[[Any], Any]


@dataclass(frozen=True)
class Term:
    field: str | None
    op: str
    value: str
    negated: bool


def parse_query(query: str | None) -> list[list[Term]]:
    """Disjunctive normal form: a list of OR-groups, each a list of ANDed terms."""
    groups: list[list[Term]] = [[]]
    negate_next = False
    for raw in _TOKEN.findall(query or ""):
        if raw == "OR":
            groups.append([])
            continue
        if raw == "AND":
            continue
        if raw == "NOT":
            negate_next = True
            continue
        negated = negate_next
        negate_next = False
        token = raw.strip("()")
        if token.startswith("-") and len(token) > 1:
            negated, token = not negated, token[1:]
        match = _TERM.match(token)
        if match:
            term = Term(
                match["field"].lower(), match["op"] or "=", _unquote(match["value"]), negated
            )
        else:
            term = Term(None, "=", _unquote(token), negated)
        groups[-1].append(term)
    return [group for group in groups if group] or [[]]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def matches(
    item: Any,
    query: str | None,
    fields: Mapping[str, FieldGetter],
    text: FieldGetter,
) -> bool:
    """Whether ``item`` satisfies ``query``; ``fields`` maps filter names to getters and
    ``text`` returns the strings a bare word is matched against."""
    if not query or not query.strip():
        return True
    for group in parse_query(query):
        if all(_term_matches(item, term, fields, text) for term in group):
            return True
    return False


def _term_matches(
    item: Any, term: Term, fields: Mapping[str, FieldGetter], text: FieldGetter
) -> bool:
    if term.field is None:
        needle = term.value.lower().rstrip("*")
        result = any(needle in (s or "").lower() for s in text(item))
    elif term.field in fields:
        result = _compare(fields[term.field](item), term.op, term.value)
    else:
        return True  # unknown filter: ignored (Shopify answers with a search warning)
    return not result if term.negated else result


def _compare(actual: Any, op: str, wanted: str) -> bool:
    if actual is None:
        return False
    if isinstance(actual, list | tuple | set):
        return any(_compare(element, op, wanted) for element in actual)
    if isinstance(actual, bool):
        return op == "=" and str(actual).lower() == wanted.lower()
    if isinstance(actual, datetime):
        bound = parse_datetime(wanted)
        return bound is not None and _ordered(actual, op, bound)
    if isinstance(actual, int | Decimal):
        try:
            number = Decimal(wanted)
        except InvalidOperation:
            return False
        return _ordered(Decimal(actual), op, number)
    value, needle = str(actual).lower(), wanted.lower()
    if op == "=":
        if needle.endswith("*"):
            return value.startswith(needle[:-1])
        return value == needle
    return _ordered(value, op, needle)


def _ordered(actual: Any, op: str, wanted: Any) -> bool:
    if op == ">":
        return bool(actual > wanted)
    if op == ">=":
        return bool(actual >= wanted)
    if op == "<":
        return bool(actual < wanted)
    if op == "<=":
        return bool(actual <= wanted)
    return bool(actual == wanted)


# --- sort keys ------------------------------------------------------------------------------


def sort_value(value: Any) -> str:
    """A string that sorts like ``value`` (dates, non-negative numbers, case-folded text)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, int):
        return f"{value:020d}"
    if isinstance(value, Decimal):
        return f"{value:020.2f}"
    return str(value).lower()


# --- pagination -----------------------------------------------------------------------------


def encode_cursor(item_id: int, value: str) -> str:
    raw = json.dumps({"last_id": item_id, "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, int]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return str(data["last_value"]), int(data["last_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor: {cursor!r}") from exc


def paginate(
    items: Sequence[T],
    args: Mapping[str, Any],
    *,
    item_id: Callable[[T], int],
    sort_keys: Mapping[str, Callable[[T], Any]],
    view: Callable[[T], Any],
    default_sort: str = "ID",
) -> dict[str, Any]:
    """Build a Relay connection view (``edges``/``nodes``/``pageInfo``) over ``items``."""
    first, last = args.get("first"), args.get("last")
    if _WHOLE_CONNECTIONS.get():
        first = last = None
    elif first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(f"`{name}` must be between 0 and {MAX_PAGE_SIZE}")
    key_name = args.get("sortKey") or default_sort
    key_fn = sort_keys.get(key_name) or sort_keys[default_sort]
    keyed = sorted(((sort_value(key_fn(i)), item_id(i), i) for i in items), key=lambda k: k[:2])
    if args.get("reverse"):
        keyed.reverse()
    descending = bool(args.get("reverse"))

    def comes_after(row: tuple[str, int], position: tuple[str, int]) -> bool:
        return row < position if descending else row > position

    after = decode_cursor(args["after"]) if args.get("after") else None
    before = decode_cursor(args["before"]) if args.get("before") else None
    window = [
        index
        for index, row in enumerate(keyed)
        if (after is None or comes_after(row[:2], after))
        and (before is None or comes_after(before, row[:2]))
    ]
    if first is not None:
        window = window[:first]
    if last is not None:
        window = window[-last:] if last else []
    rows = [keyed[i] for i in window]
    edges = [{"cursor": encode_cursor(row[1], row[0]), "node": view(row[2])} for row in rows]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] < len(keyed) - 1,
            "hasPreviousPage": bool(window) and window[0] > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }
