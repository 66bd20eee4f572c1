"""A small SOQL subset: parse, bind to an object's fields, evaluate over in-memory records.

Hand-written on purpose: nothing on PyPI turns SOQL into something an in-memory store can
evaluate except ``python-soql-parser`` (0.2.0, unmaintained since 2023, adds pyparsing), and
we need Salesforce's own error answers (``MALFORMED_QUERY`` "unexpected token: X",
``INVALID_FIELD`` "No such column ..." with the row/column caret) for the app's error paths,
which a generic parser would not give. The subset is what the connector needs:

    SELECT COUNT() | field[, field...] FROM Object
      [WHERE cond]   cond := term [(AND|OR) term ...], term := [NOT] (cond) | comparison,
                     comparison := field (= | != | <> | < | <= | > | >=) literal
                                 | field [NOT] IN (literal[, literal...])
                                 | field LIKE 'pattern'   (% and _ wildcards)
      [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST][, ...]] [LIMIT n] [OFFSET n]

Literals: 'quoted strings' (backslash escapes), numbers, true/false, null, dates
(YYYY-MM-DD). As in SOQL, keywords and field names are case-insensitive and text comparisons
(=, IN, LIKE) ignore case. Not supported (MALFORMED_QUERY): relationship paths, subqueries,
GROUP BY, aggregate functions other than COUNT(), date literals such as TODAY, bind variables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ApiError
from .ids import is_valid_id, to18
from .schema import NUMERIC_TYPES, FieldDef, ObjectDef

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w-]))
      | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
_KEYWORDS = frozenset(
    {
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "in",
        "like",
        "order",
        "by",
        "asc",
        "desc",
        "nulls",
        "first",
        "last",
        "limit",
        "offset",
        "null",
        "true",
        "false",
    }
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | op | punct | number | date | word | other | end
    text: str
    column: int  # 1-based, as in Salesforce's "ERROR at Row:1:Column:N"

    @property
    def keyword(self) -> str | None:
        lowered = self.text.lower()
        return lowered if self.kind == "word" and lowered in _KEYWORDS else None


@dataclass(frozen=True)
class FieldRef:
    name: str
    column: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    operator: str  # = != < <= > >= in notin like
    values: tuple[Any, ...]


@dataclass(frozen=True)
class BoolOp:
    operator: str  # and | or | not
    operands: tuple[Any, ...]


@dataclass(frozen=True)
class Order:
    field: FieldRef
    descending: bool
    nulls_last: bool


@dataclass
class Query:
    text: str
    object: str
    object_column: int
    fields: list[FieldRef] = field(default_factory=list)
    count: bool = False
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


def malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", message)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        kind = match.lastgroup or "other"
        value = match.group(kind)
        tokens.append(Token(kind, value, match.start(kind) + 1))
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            if nxt not in _ESCAPES:
                raise malformed(f"Invalid string literal '{literal}'. Illegal character sequence")
            out.append(_ESCAPES[nxt])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def unexpected(self) -> ApiError:
        token = self.current
        if token.kind == "end":
            return malformed("unexpected token: <EOF>")
        return malformed(f"unexpected token: {token.text}")

    def expect_keyword(self, word: str) -> Token:
        if self.current.keyword != word:
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, char: str) -> Token:
        if self.current.kind != "punct" or self.current.text != char:
            raise self.unexpected()
        return self.advance()

    def field_ref(self) -> FieldRef:
        token = self.current
        if token.kind != "word" or token.keyword is not None:
            raise self.unexpected()
        self.advance()
        return FieldRef(token.text, token.column)

    def parse(self) -> Query:
        self.expect_keyword("select")
        fields: list[FieldRef] = []
        count = False
        if self.current.kind == "word" and self.current.text.lower() == "count":
            nxt = self.tokens[self.index + 1]
            if nxt.kind == "punct" and nxt.text == "(":
                self.advance()
                self.advance()
                self.expect_punct(")")
                count = True
        if not count:
            fields.append(self.field_ref())
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                fields.append(self.field_ref())
        self.expect_keyword("from")
        obj = self.current
        if obj.kind != "word" or obj.keyword is not None:
            raise self.unexpected()
        self.advance()
        query = Query(self.text, obj.text, obj.column, fields, count)
        if self.current.keyword == "where":
            self.advance()
            query.where = self.condition()
        if self.current.keyword == "order":
            self.advance()
            self.expect_keyword("by")
            query.order.append(self.order_item())
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                query.order.append(self.order_item())
        if self.current.keyword == "limit":
            self.advance()
            query.limit = self.integer()
        if self.current.keyword == "offset":
            self.advance()
            query.offset = self.integer()
        if self.current.kind != "end":
            raise self.unexpected()
        return query

    def integer(self) -> int:
        token = self.current
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(token.text)

    def order_item(self) -> Order:
        ref = self.field_ref()
        descending = False
        if self.current.keyword in ("asc", "desc"):
            descending = self.advance().keyword == "desc"
        nulls_last = descending  # SOQL default: NULLS FIRST ascending, NULLS LAST descending
        if self.current.keyword == "nulls":
            self.advance()
            if self.current.keyword not in ("first", "last"):
                raise self.unexpected()
            nulls_last = self.advance().keyword == "last"
        return Order(ref, descending, nulls_last)

    def condition(self) -> Any:
        left = self.conjunction()
        operands = [left]
        while self.current.keyword == "or":
            self.advance()
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def conjunction(self) -> Any:
        operands = [self.term()]
        while self.current.keyword == "and":
            self.advance()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def term(self) -> Any:
        if self.current.keyword == "not":
            self.advance()
            return BoolOp("not", (self.term(),))
        if self.current.kind == "punct" and self.current.text == "(":
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        ref = self.field_ref()
        token = self.current
        if token.kind == "op":
            self.advance()
            operator = "!=" if token.text == "<>" else token.text
            return Comparison(ref, operator, (self.literal(),))
        negated = False
        if token.keyword == "not":
            self.advance()
            negated = True
        if self.current.keyword == "in":
            self.advance()
            self.expect_punct("(")
            values = [self.literal()]
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                values.append(self.literal())
            self.expect_punct(")")
            return Comparison(ref, "notin" if negated else "in", tuple(values))
        if not negated and self.current.keyword == "like":
            self.advance()
            pattern = self.literal()
            if not isinstance(pattern, str):
                raise self.unexpected()
            return Comparison(ref, "like", (pattern,))
        raise self.unexpected()

    def literal(self) -> Any:
        token = self.current
        if token.kind == "string":
            self.advance()
            return _unquote(token.text)
        if token.kind == "number":
            self.advance()
            return Decimal(token.text)
        if token.kind == "date":
            self.advance()
            return token.text
        if token.keyword in ("null", "true", "false"):
            self.advance()
            return {"null": None, "true": True, "false": False}[token.keyword or ""]
        raise self.unexpected()


def parse(text: str) -> Query:
    """Parse ``text``; ApiError MALFORMED_QUERY when it is outside the subset."""
    if not text or not text.strip():
        raise malformed("unexpected token: <EOF>")
    return _Parser(text).parse()


# --- binding and evaluation -------------------------------------------------------------------


def no_such_column(query: Query, ref: FieldRef, obj: str) -> ApiError:
    caret = " " * (ref.column - 1) + "^"
    return ApiError(
        400,
        "INVALID_FIELD",
        f"\n{query.text}\n{caret}\nERROR at Row:1:Column:{ref.column}\n"
        f"No such column '{ref.name}' on entity '{obj}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def unsupported_object(query: Query) -> ApiError:
    caret = " " * (query.object_column - 1) + "^"
    return ApiError(
        400,
        "INVALID_TYPE",
        f"\n{query.text}\n{caret}\nERROR at Row:1:Column:{query.object_column}\n"
        f"sObject type '{query.object}' is not supported. If you are attempting to use a custom "
        "object, be sure to append the '__c' after the entity name. Please reference your WSDL "
        "or the describe call for the appropriate names.",
    )


def bind(query: Query, obj: ObjectDef, visible: Callable[[FieldDef], bool]) -> dict[str, FieldDef]:
    """Resolve every field the query names (case-insensitively) among the fields the user can
    see; ApiError INVALID_FIELD for the first that is not there. Returns name → field."""
    resolved: dict[str, FieldDef] = {}
    refs = list(query.fields) + [o.field for o in query.order] + _refs(query.where)
    for ref in refs:
        fd = obj.field(ref.name)
        if fd is None or not visible(fd):
            raise no_such_column(query, ref, obj.name)
        resolved[ref.name] = fd
    return resolved


def _refs(node: Any) -> list[FieldRef]:
    if node is None:
        return []
    if isinstance(node, Comparison):
        return [node.field]
    refs: list[FieldRef] = []
    for operand in node.operands:
        refs.extend(_refs(operand))
    return refs


def _normalise(fd: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    if fd.type in NUMERIC_TYPES:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    if fd.type in ("id", "reference") and isinstance(value, str) and is_valid_id(value):
        return to18(value).lower()  # a 15- and an 18-character id name the same record
    if isinstance(value, str):
        return value.lower()
    return value


def _like(pattern: str) -> re.Pattern[str]:
    regex = "".join(
        ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.lower()
    )
    return re.compile(f"^{regex}$", re.DOTALL)


def _compare(left: Any, operator: str, right: Any) -> bool:
    if operator == "=":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if operator == "<":
            return bool(left < right)
        if operator == "<=":
            return bool(left <= right)
        if operator == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False


Predicate = Callable[[dict[str, Any]], bool]


def compile_where(node: Any, fields: dict[str, FieldDef]) -> Predicate:
    """A WHERE tree as a predicate over records keyed by canonical field name. Literals are
    normalised once (IN lists become sets) so a query over many records stays cheap."""
    if node is None:
        return lambda record: True
    if isinstance(node, BoolOp):
        parts = [compile_where(o, fields) for o in node.operands]
        if node.operator == "and":
            return lambda record: all(p(record) for p in parts)
        if node.operator == "or":
            return lambda record: any(p(record) for p in parts)
        return lambda record: not parts[0](record)
    fd = fields[node.field.name]
    name = fd.name
    literals = [_normalise(fd, v) for v in node.values]
    if node.operator in ("in", "notin"):
        members = set(literals)
        negate = node.operator == "notin"
        return lambda record: (_normalise(fd, record.get(name)) in members) != negate
    if node.operator == "like":
        pattern = _like(str(node.values[0]))
        return lambda record: (
            record.get(name) is not None and bool(pattern.match(str(record.get(name)).lower()))
        )
    operator, literal = node.operator, literals[0]
    return lambda record: _compare(_normalise(fd, record.get(name)), operator, literal)


def sort_records(
    records: Sequence[dict[str, Any]], order: Sequence[Order], fields: dict[str, FieldDef]
) -> list[dict[str, Any]]:
    """Stable multi-key sort honouring ASC/DESC and NULLS FIRST/LAST."""
    result = list(records)
    for item in reversed(order):
        fd = fields[item.field.name]
        present = [r for r in result if r.get(fd.name) is not None]
        absent = [r for r in result if r.get(fd.name) is None]
        present.sort(key=_sort_key(fd), reverse=item.descending)
        result = present + absent if item.nulls_last else absent + present
    return result


def _sort_key(fd: FieldDef) -> Callable[[dict[str, Any]], Any]:
    def key(record: dict[str, Any]) -> Any:
        return _normalise(fd, record.get(fd.name))

    return key
