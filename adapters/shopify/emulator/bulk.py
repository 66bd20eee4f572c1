"""Bulk query operations, as Shopify documents them ("Perform bulk operations with the GraphQL
Admin API"), and the download of their results.

* ``bulkOperationRunQuery(query:)`` checks the document (valid against the schema, a query, at
  least one connection, at most five connections, nested at most two levels, a nested
  connection's parent selects ``id``) and answers ``userErrors`` (code ``INVALID``) otherwise.
  The number of bulk queries running at once per app and shop is limited: one before API
  version 2026-01 (``OPERATION_IN_PROGRESS``, "A bulk query operation for this app and shop is
  already in progress: <id>."), five from 2026-01 on (``LIMIT_REACHED``); a test can set it.
* The operation is ``CREATED`` for ``BulkSettings.delay`` seconds, then ``RUNNING`` while
  ``objectCount`` / ``rootObjectCount`` grow at ``BulkSettings.rate`` objects a second, then
  ``COMPLETED`` with ``url`` (``null`` when the query found nothing), ``fileSize`` and
  ``completedAt``. An injected failure (:meth:`ShopifyEmulator.fail_next_bulk_operation`)
  ends it ``FAILED`` with ``errorCode`` and a ``partialDataUrl`` for what was read before.
  ``bulkOperationCancel`` moves a running operation to ``CANCELING``, then ``CANCELED``.
* The result is JSONL: one object per line, every node of every connection (``edges``/``node``
  and ``nodes`` alike) on its own line, nested connections removed from their parent and their
  nodes given ``__parentId`` (the parent's ``id``), always after the parent. Connections return
  all their rows (``first``/``last`` are not needed).
* ``url`` is a signed link served by the emulator (``GET /{shop}/_bulk/{id}.jsonl?expires=…
  &signature=…``, valid 7 days; the app reaches it through the same reroute as every Shopify
  URL). After 7 days the operation is ``EXPIRED``.
* ``bulk_operations/finish`` is sent when an operation completes, fails or is canceled, to the
  shop's API subscriptions for that topic (none: no webhook), with Shopify's payload
  ``{admin_graphql_api_id, completed_at, created_at, error_code, status, type}``.
* Queries: ``currentBulkOperation(type:)`` (deprecated in 2026-07 but served),
  ``bulkOperation(id:)``, ``bulkOperations`` (``query`` on ``status``, ``operation_type``,
  ``id``, ``created_at``) and ``node(id:)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    execute,
    get_named_type,
    get_nullable_type,
    parse,
    validate,
)
from graphql.error import GraphQLSyntaxError

from .admin_schema import admin_schema
from .commerce import Env, user_error
from .graphql_api import _field_resolver, _type_resolver
from .resolvers import registry
from .search import matches, paginate, whole_connections
from .state import BulkOperation, Shop
from .values import gid, gql_datetime, parse_gid, rest_datetime
from .views import NODE_VIEWS, GqlContext, View

URL_TTL = timedelta(days=7)
MAX_CONNECTIONS = 5
MAX_NESTING = 2
FIVE_AT_A_TIME_FROM = "2026-01"
RUNNING = ("CREATED", "RUNNING", "CANCELING")
FINISH_TOPIC = "bulk_operations/finish"


@dataclass
class BulkSettings:
    """How the emulator runs bulk operations. ``concurrency`` None follows Shopify's rule for
    the request's API version (1 before 2026-01, then 5)."""

    delay: float = 0.2
    rate: float = 50_000.0
    concurrency: int | None = None
    secret: str = ""
    wall_clock: Callable[[], float] | None = None
    clock: Callable[[], float] | None = None  # monotonic: the run starts once its rows exist
    failures: list[tuple[str, int]] = field(default_factory=list)


def concurrency(settings: BulkSettings, api_version: str) -> int:
    if settings.concurrency is not None:
        return settings.concurrency
    return 5 if api_version >= FIVE_AT_A_TIME_FROM else 1


# --- the shape of a bulk query --------------------------------------------------------------


class InvalidBulkQuery(ValueError):
    pass


@dataclass
class _Obj:
    """Where connections sit in an object's result: directly (``conns``) or in sub-objects."""

    conns: dict[str, _Conn] = field(default_factory=dict)
    objs: dict[str, _Obj] = field(default_factory=dict)
    selects_id: bool = False


@dataclass
class _Conn:
    paths: list[tuple[str, ...]]  # result keys to the nodes: (edges, node) or (nodes,)
    node: _Obj


class _Shape:
    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.fragments = fragments
        self.connections = 0

    def fields(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType
    ) -> Iterator[tuple[FieldNode, GraphQLNamedType]]:
        """Field selections with the type each is selected on (fragments flattened)."""
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                on = selection.type_condition
                target = self.schema.get_type(on.name.value) if on else parent
                yield from self.fields(selection.selection_set, target or parent)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                target = self.schema.get_type(fragment.type_condition.name.value)
                yield from self.fields(fragment.selection_set, target or parent)

    def obj(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, depth: int
    ) -> _Obj:
        shape = _Obj()
        for node, on in self.fields(selection_set, parent):
            name = node.name.value
            key = node.alias.value if node.alias else name
            if name == "id":
                shape.selects_id = True
            if (
                not isinstance(on, GraphQLObjectType | GraphQLInterfaceType)
                or name not in on.fields
            ):
                continue
            field_type = on.fields[name].type
            named = get_named_type(field_type)
            if _is_connection(named):
                shape.conns[key] = self.conn(node, named, depth + 1)
            elif isinstance(named, GraphQLObjectType | GraphQLInterfaceType) and node.selection_set:
                inner = self.obj(node.selection_set, named, depth)
                if inner.conns or inner.objs:
                    if isinstance(get_nullable_type(field_type), GraphQLList):
                        raise InvalidBulkQuery(
                            "Queries that contain a connection field within a list field are "
                            "not supported."
                        )
                    shape.objs[key] = inner
        return shape

    def conn(self, node: FieldNode, connection: GraphQLNamedType, depth: int) -> _Conn:
        self.connections += 1
        if depth > MAX_NESTING:
            raise InvalidBulkQuery(
                f"Bulk queries cannot contain connections with a nesting depth greater than "
                f"{MAX_NESTING}."
            )
        assert isinstance(connection, GraphQLObjectType)
        node_type = get_named_type(connection.fields["nodes"].type)
        paths: list[tuple[str, ...]] = []
        merged = _Obj()
        for sub, _ in self.fields(node.selection_set, connection):
            key = sub.alias.value if sub.alias else sub.name.value
            if sub.name.value == "nodes":
                paths.append((key,))
                _merge(merged, self.obj(sub.selection_set, node_type, depth))
            elif sub.name.value == "edges":
                edge_type = get_named_type(connection.fields["edges"].type)
                for inner, _ in self.fields(sub.selection_set, edge_type):
                    if inner.name.value == "node":
                        inner_key = inner.alias.value if inner.alias else "node"
                        paths.append((key, inner_key))
                        _merge(merged, self.obj(inner.selection_set, node_type, depth))
        if not paths:
            raise InvalidBulkQuery("A connection in a bulk query must select edges.node or nodes.")
        if merged.conns and not merged.selects_id:
            raise InvalidBulkQuery(
                "The parent of a nested connection must select the 'id' field (it becomes the "
                "children's __parentId)."
            )
        return _Conn(paths, merged)


def _merge(into: _Obj, other: _Obj) -> None:
    into.conns.update(other.conns)
    into.objs.update(other.objs)
    into.selects_id = into.selects_id or other.selects_id


def _is_connection(named: GraphQLNamedType) -> bool:
    return (
        isinstance(named, GraphQLObjectType)
        and named.name.endswith("Connection")
        and "pageInfo" in named.fields
        and "nodes" in named.fields
    )


@dataclass
class _Plan:
    document: Any
    operation: OperationDefinitionNode
    root_key: str
    root: _Conn


def plan(schema: GraphQLSchema, query: str) -> _Plan:
    """Check a bulk query the way ``bulkOperationRunQuery`` does; :class:`InvalidBulkQuery`
    with Shopify's kind of message when it cannot run."""
    try:
        document = parse(query)
    except GraphQLSyntaxError as exc:
        raise InvalidBulkQuery(f"Invalid bulk query: {exc.message}") from None
    errors = validate(schema, document)
    if errors:
        raise InvalidBulkQuery(f"Invalid bulk query: {errors[0].message}")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise InvalidBulkQuery("Bulk queries must contain exactly one operation.")
    operation = operations[0]
    if operation.operation != OperationType.QUERY:
        raise InvalidBulkQuery("Bulk queries cannot contain mutations or subscriptions.")
    if operation.variable_definitions:
        raise InvalidBulkQuery("Bulk queries cannot use variables.")
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    shape = _Shape(schema, fragments)
    assert schema.query_type is not None
    root = shape.obj(operation.selection_set, schema.query_type, 0)
    if shape.connections == 0:
        raise InvalidBulkQuery("Bulk queries must contain at least one connection.")
    if shape.connections > MAX_CONNECTIONS:
        raise InvalidBulkQuery(
            f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
        )
    top = list(shape.fields(operation.selection_set, schema.query_type))
    if len(top) != 1 or len(root.conns) != 1:
        raise InvalidBulkQuery(
            "The emulator runs bulk queries with one top-level field, a connection."
        )
    ((root_key, root_conn),) = root.conns.items()
    return _Plan(document, operation, root_key, root_conn)


def run_lines(ctx: GqlContext, planned: _Plan) -> tuple[list[bytes], list[bool]]:
    """Execute the planned query over the shop as it is now; the JSONL lines and, per line,
    whether it is a root object."""
    with whole_connections():
        result = execute(
            admin_schema(),
            planned.document,
            root_value=registry.root_value(ctx, OperationType.QUERY),
            context_value=ctx,
            field_resolver=_field_resolver,
            type_resolver=_type_resolver,
        )
    assert isinstance(result, ExecutionResult)
    if result.errors:
        raise RuntimeError(result.errors[0].message)
    lines: list[bytes] = []
    roots: list[bool] = []
    _emit((result.data or {}).get(planned.root_key), planned.root, None, lines, roots)
    return lines, roots


def _emit(value: Any, conn: _Conn, parent_id: Any, lines: list[bytes], roots: list[bool]) -> None:
    for node in _nodes(value, conn):
        row = dict(node)
        children: list[tuple[Any, _Conn]] = []
        _strip(row, conn.node, children)
        if parent_id is not None:
            row["__parentId"] = parent_id
        lines.append(json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        roots.append(parent_id is None)
        for child_value, child in children:
            _emit(child_value, child, node.get("id"), lines, roots)


def _nodes(value: Any, conn: _Conn) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return []
    for path in conn.paths:
        if path[0] not in value:
            continue
        if len(path) == 1:
            return [n for n in value[path[0]] or [] if isinstance(n, dict)]
        return [e[path[1]] for e in value[path[0]] or [] if isinstance(e, dict) and e.get(path[1])]
    return []


def _strip(row: dict[str, Any], shape: _Obj, children: list[tuple[Any, _Conn]]) -> None:
    for key, conn in shape.conns.items():
        children.append((row.pop(key, None), conn))
    for key, sub in shape.objs.items():
        if isinstance(row.get(key), dict):
            row[key] = dict(row[key])
            _strip(row[key], sub, children)


# --- lifecycle ----------------------------------------------------------------------------


def start(ctx: GqlContext, query: str) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
    """``bulkOperationRunQuery``: the new operation, or the user errors."""
    settings: BulkSettings = ctx.bulk
    shop = ctx.shop
    running = [op for op in shop.bulk_operations.values() if op.status in RUNNING]
    limit = concurrency(settings, ctx.api_version)
    if len(running) >= limit:
        if limit == 1:
            message = (
                "A bulk query operation for this app and shop is already in progress: "
                f"{gid('BulkOperation', running[0].id)}."
            )
            return None, [user_error(None, message, "OPERATION_IN_PROGRESS")]
        return None, [
            user_error(
                None, "Bulk operations limit reached. Please try again later.", "LIMIT_REACHED"
            )
        ]
    try:
        planned = plan(admin_schema(), query)
    except InvalidBulkQuery as exc:
        return None, [user_error(["query"], str(exc), "INVALID")]
    lines, roots = run_lines(ctx, planned)
    operation = BulkOperation(
        id=ctx.env.ids.next(),
        query=query,
        created_at=ctx.now,
        # Reading the rows takes a while for a big shop: the CREATED → RUNNING timeline
        # starts when they are ready, as Shopify's does when the operation is queued.
        started_clock=settings.clock() if settings.clock else ctx.env.clock,
        lines=lines,
        roots=roots,
    )
    if settings.failures:
        operation.fail_code, operation.fail_after = settings.failures.pop(0)
    shop.bulk_operations[operation.id] = operation
    return operation, []


def cancel(ctx: GqlContext, raw_id: Any) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
    number = parse_gid(raw_id, "BulkOperation")
    operation = ctx.shop.bulk_operations.get(number) if number is not None else None
    if operation is None:
        return None, [user_error(["id"], "Bulk operation does not exist")]
    if operation.finished or operation.status == "CANCELING":
        message = f"A bulk operation cannot be canceled when it is {operation.status.lower()}"
        return operation, [user_error(None, message)]
    operation.status = "CANCELING"
    operation.cancel_requested = True
    return operation, []


def advance(env: Env, settings: BulkSettings) -> None:
    """Move every operation of the shop on to where the clock says it is (under the lock)."""
    shop = env.shop
    for op in shop.bulk_operations.values():
        if op.status == "COMPLETED" and op.completed_at and env.now >= op.completed_at + URL_TTL:
            op.status = "EXPIRED"
        if op.finished:
            continue
        if op.cancel_requested:
            op.status = "CANCELED"
            _finished(env, op)
            continue
        elapsed = env.clock - op.started_clock - settings.delay
        if elapsed < 0:
            continue
        total = len(op.lines)
        processed = min(total, int(elapsed * settings.rate))
        if op.fail_after is not None and processed >= min(op.fail_after, total):
            _count(op, min(op.fail_after, total))
            op.status, op.error_code = "FAILED", op.fail_code
            _finished(env, op)
            continue
        _count(op, processed)
        if processed >= total:
            op.status, op.completed_at = "COMPLETED", env.now
            _finished(env, op)
        else:
            op.status = "RUNNING"


def _count(op: BulkOperation, processed: int) -> None:
    op.object_count = processed
    op.root_object_count = sum(op.roots[:processed])


def _finished(env: Env, op: BulkOperation) -> None:
    shop = env.shop
    if not any(s.topic == FINISH_TOPIC for s in shop.webhook_subscriptions.values()):
        return
    env.emit(
        FINISH_TOPIC,
        {
            "admin_graphql_api_id": gid("BulkOperation", op.id),
            "completed_at": rest_datetime(op.completed_at, shop.tz),
            "created_at": rest_datetime(op.created_at, shop.tz),
            "error_code": op.error_code.lower() if op.error_code else None,
            "status": op.status.lower(),
            "type": "query",
        },
    )


# --- download URLs ------------------------------------------------------------------------


def _signature(secret: str, shop: str, op_id: int, expires: int) -> str:
    message = f"{shop}:{op_id}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def download_url(settings: BulkSettings, shop: Shop, op: BulkOperation) -> str:
    finished_at = op.completed_at or op.created_at
    expires = int((finished_at + URL_TTL).timestamp())
    signature = _signature(settings.secret, shop.domain, op.id, expires)
    return f"https://{shop.domain}/_bulk/{op.id}.jsonl?expires={expires}&signature={signature}"


def result_lines(op: BulkOperation) -> list[bytes]:
    """What the operation's file holds: everything when completed, what was read when failed."""
    if op.status == "COMPLETED":
        return op.lines
    if op.status == "FAILED":
        return op.lines[: op.object_count]
    return []


# --- views and resolvers --------------------------------------------------------------------


def bulk_operation_view(ctx: GqlContext, op: BulkOperation) -> View:
    lines = result_lines(op)
    size = sum(len(line) for line in lines)
    url = download_url(ctx.bulk, ctx.shop, op) if op.status == "COMPLETED" and lines else None
    partial = download_url(ctx.bulk, ctx.shop, op) if op.status == "FAILED" and lines else None
    return {
        "__typename": "BulkOperation",
        "id": gid("BulkOperation", op.id),
        "status": op.status,
        "type": "QUERY",
        "query": op.query,
        "errorCode": op.error_code,
        "createdAt": gql_datetime(op.created_at),
        "completedAt": gql_datetime(op.completed_at),
        "objectCount": str(op.object_count),
        "rootObjectCount": str(op.root_object_count),
        "fileSize": str(size) if url else None,
        "url": url,
        "partialDataUrl": partial,
    }


def _node_view(ctx: GqlContext, number: int) -> View | None:
    op = ctx.shop.bulk_operations.get(number)
    return bulk_operation_view(ctx, op) if op else None


NODE_VIEWS["BulkOperation"] = _node_view

Args = dict[str, Any]


@registry.mutation("bulkOperationRunQuery")
def _run_query(ctx: GqlContext, info: Any, args: Args) -> View:
    op, errors = start(ctx, args["query"])
    return {
        "bulkOperation": bulk_operation_view(ctx, op) if op else None,
        "userErrors": [{"code": None, **e} for e in errors],
    }


@registry.mutation("bulkOperationCancel")
def _cancel(ctx: GqlContext, info: Any, args: Args) -> View:
    op, errors = cancel(ctx, args["id"])
    return {
        "bulkOperation": bulk_operation_view(ctx, op) if op else None,
        "userErrors": errors,
    }


@registry.query("currentBulkOperation")
def _current(ctx: GqlContext, info: Any, args: Args) -> View | None:
    if args.get("type", "QUERY") != "QUERY":
        return None
    ops = ctx.shop.bulk_operations
    return bulk_operation_view(ctx, ops[max(ops)]) if ops else None


@registry.query("bulkOperation")
def _bulk_operation(ctx: GqlContext, info: Any, args: Args) -> View | None:
    number = parse_gid(args["id"], "BulkOperation")
    return _node_view(ctx, number) if number is not None else None


_FIELDS: dict[str, Callable[[BulkOperation], Any]] = {
    "id": lambda o: o.id,
    "status": lambda o: o.status.lower(),
    "operation_type": lambda o: "query",
    "created_at": lambda o: o.created_at,
}


@registry.query("bulkOperations")
def _bulk_operations(ctx: GqlContext, info: Any, args: Args) -> View:
    selected = [
        o
        for o in ctx.shop.bulk_operations.values()
        if matches(o, args.get("query"), _FIELDS, lambda o: [])
    ]
    return paginate(
        selected,
        {**args, "reverse": not args.get("reverse")},  # newest first by default, as Shopify
        item_id=lambda o: o.id,
        sort_keys={
            "CREATED_AT": lambda o: o.created_at,
            "COMPLETED_AT": lambda o: o.completed_at,
            "ID": lambda o: o.id,
        },
        default_sort="CREATED_AT",
        view=lambda o: bulk_operation_view(ctx, o),
    )


# --- HTTP ---------------------------------------------------------------------------------


def bulk_blueprint(
    find: Callable[[str, int], BulkOperation | None], settings: BulkSettings
) -> Blueprint:
    """``GET /{shop}/_bulk/{id}.jsonl``: the result file behind a signed ``url``, streamed."""
    bp = Blueprint("bulk_results", __name__)

    @bp.get("/<shop>/_bulk/<int:op_id>.jsonl")
    def result(shop: str, op_id: int) -> ResponseReturnValue:
        try:
            expires = int(request.args.get("expires", ""))
        except ValueError:
            return jsonify(errors="AccessDenied"), 403
        expected = _signature(settings.secret, shop, op_id, expires)
        if not hmac.compare_digest(expected, request.args.get("signature", "")):
            return jsonify(errors="AccessDenied"), 403
        now = settings.wall_clock() if settings.wall_clock else 0.0
        if now >= expires:
            return jsonify(errors="ExpiredToken"), 403
        op = find(shop, op_id)
        lines = result_lines(op) if op else []
        if not lines:
            return jsonify(errors="NoSuchKey"), 404
        return Response(iter(list(lines)), 200, mimetype="application/jsonl")

    return bp
