"""The Admin GraphQL endpoint: parse, validate against the real schema, cost, throttle, execute.

Answers are shaped like Shopify's (graphql-ruby) answers:

* not JSON or no ``query``: HTTP 400
  ``{"errors": {"query": "Required parameter missing or invalid"}}``;
* syntax or validation errors: HTTP 200 ``{"errors": [{message, locations, extensions: {code}}]}``
  with Shopify's codes where graphql-core's rule is recognisable (``undefinedField``,
  ``argumentNotAccepted``, ``missingRequiredArguments``, ``undefinedType``, ``variableNotUsed``,
  ``variableNotDefined``), else ``GRAPHQL_VALIDATION_FAILED``; nothing is charged;
* requested cost over 1,000: ``MAX_COST_EXCEEDED``; not enough points in the bucket: ``THROTTLED``
  with ``actualQueryCost: null``; both with ``extensions.cost``;
* otherwise ``{"data": …, "errors"?: […], "extensions": {"cost": {requestedQueryCost,
  actualQueryCost, throttleStatus}}}``.

Root fields resolve through a :class:`ResolverRegistry`; a root field nobody registered is an
error naming it ("emulator does not implement QueryRoot.x"), as is any object field a view lacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    validate,
    visit,
)
from graphql.error import GraphQLSyntaxError
from graphql.language import Visitor

from .cost import MAX_QUERY_COST, QueryCost, throttle_status
from .state import Bucket
from .views import GqlContext

Resolver = Callable[[GqlContext, GraphQLResolveInfo, dict[str, Any]], Any]

RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
MAX_INPUT_ARRAY = 250


class ResolverRegistry:
    """Root-field resolvers by name; add an operation with ``@registry.query("name")`` or
    ``@registry.mutation("name")``. A resolver gets ``(ctx, info, args)``."""

    def __init__(self) -> None:
        self.queries: dict[str, Resolver] = {}
        self.mutations: dict[str, Resolver] = {}

    def query(self, name: str) -> Callable[[Resolver], Resolver]:
        def register(fn: Resolver) -> Resolver:
            self.queries[name] = fn
            return fn

        return register

    def mutation(self, name: str) -> Callable[[Resolver], Resolver]:
        def register(fn: Resolver) -> Resolver:
            self.mutations[name] = fn
            return fn

        return register

    def root_value(self, ctx: GqlContext, operation: OperationType) -> dict[str, Any]:
        table = self.mutations if operation == OperationType.MUTATION else self.queries
        return {
            name: (lambda info, _fn=fn, **args: _fn(ctx, info, args)) for name, fn in table.items()
        }


@dataclass
class GraphQLOutcome:
    status: int
    body: dict[str, Any]
    operation_name: str | None = None
    root_fields: tuple[str, ...] = ()
    requested_cost: int | None = None
    actual_cost: int | None = None
    throttled: bool = False


def _field_resolver(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    if isinstance(source, Mapping):
        if info.field_name in source:
            value = source[info.field_name]
            return value(info, **args) if callable(value) else value
        raise GraphQLError(f"emulator does not implement {info.parent_type.name}.{info.field_name}")
    return getattr(source, info.field_name, None)


def _type_resolver(value: Any, info: GraphQLResolveInfo, abstract: GraphQLAbstractType) -> Any:
    if isinstance(value, Mapping) and "__typename" in value:
        return value["__typename"]
    raise GraphQLError(f"emulator cannot tell the concrete type of this {abstract.name}")


class AdminGraphQL:
    """Runs Admin GraphQL requests for one emulator (call under the emulator's lock)."""

    def __init__(self, schema: GraphQLSchema, registry: ResolverRegistry) -> None:
        self.schema = schema
        self.registry = registry

    def handle(
        self,
        ctx: GqlContext,
        bucket: Bucket,
        now: float,
        payload: Any,
        *,
        force_throttle: bool = False,
    ) -> GraphQLOutcome:
        """Answer one request. ``force_throttle`` (an injected fault) answers ``THROTTLED``
        whatever the bucket holds, after the usual checks."""
        query = payload.get("query") if isinstance(payload, Mapping) else None
        if not isinstance(query, str) or not query.strip():
            return GraphQLOutcome(
                400, {"errors": {"query": "Required parameter missing or invalid"}}
            )
        variables = payload.get("variables")
        if isinstance(variables, str):
            try:
                variables = json.loads(variables or "{}")
            except ValueError:
                variables = None
        if variables is not None and not isinstance(variables, dict):
            return GraphQLOutcome(400, {"errors": {"variables": "Invalid variables"}})
        operation_name = payload.get("operationName") or None

        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            error = exc.formatted
            error["extensions"] = {"code": "GRAPHQL_PARSE_FAILED"}
            return GraphQLOutcome(200, {"errors": [error]}, operation_name)
        errors = validate(self.schema, document)
        if errors:
            return GraphQLOutcome(
                200, {"errors": [shopify_validation_error(e) for e in errors]}, operation_name
            )
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f'Unknown operation named "{operation_name}".'
                if operation_name
                else "An operation name is required"
            )
            return GraphQLOutcome(200, {"errors": [{"message": message}]}, operation_name)
        name = operation_name or (operation.name.value if operation.name else None)
        roots = _root_fields(operation)
        oversized = _oversized_input(operation, variables)
        if oversized is not None:
            # shopify.dev "API limits": an input array may hold at most 250 items.
            error = {
                "message": f"The input array size of {oversized} is greater than the maximum "
                f"allowed of {MAX_INPUT_ARRAY}.",
                "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"},
            }
            return GraphQLOutcome(200, {"errors": [error]}, name, roots)
        cost = QueryCost(self.schema, operation, _fragments(document), variables)
        requested = cost.requested()
        bucket.refill(now)

        if requested > MAX_QUERY_COST:
            return GraphQLOutcome(200, max_cost_body(requested, bucket), name, roots, requested)
        if force_throttle or requested > bucket.available:
            return GraphQLOutcome(
                200, throttled_body(requested, bucket), name, roots, requested, throttled=True
            )

        bucket.available -= requested
        result = execute(
            self.schema,
            document,
            root_value=self.registry.root_value(ctx, operation.operation),
            context_value=ctx,
            variable_values=variables,
            operation_name=operation_name,
            field_resolver=_field_resolver,
            type_resolver=_type_resolver,
        )
        assert isinstance(result, ExecutionResult), "emulator resolvers are synchronous"
        actual = min(requested, cost.actual(result.data)) if result.data is not None else 0
        bucket.available = min(bucket.maximum, bucket.available + (requested - actual))
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [_format_execution_error(e) for e in result.errors]
        if result.data is not None or not result.errors:
            body["data"] = result.data
        body["extensions"] = {"cost": _cost(requested, actual, bucket)}
        return GraphQLOutcome(200, body, name, roots, requested, actual)


def max_cost_body(requested: int, bucket: Bucket) -> dict[str, Any]:
    """Shopify's answer when one query asks for more than 1,000 points (HTTP 200)."""
    message = (
        f"Query cost is {requested}, which exceeds the single query max cost limit "
        f"({MAX_QUERY_COST}).\n\nSee {RATE_LIMIT_DOCS} for more information on how the cost of "
        "a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk "
        "operations should be used instead."
    )
    extensions = {
        "code": "MAX_COST_EXCEEDED",
        "cost": requested,
        "maxCost": MAX_QUERY_COST,
        "documentation": RATE_LIMIT_DOCS,
    }
    return {
        "errors": [{"message": message, "extensions": extensions}],
        "extensions": {"cost": _cost(requested, None, bucket)},
    }


def throttled_body(requested: int, bucket: Bucket) -> dict[str, Any]:
    """Shopify's answer when the bucket lacks ``requested`` points (HTTP 200)."""
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS},
            }
        ],
        "extensions": {"cost": _cost(requested, None, bucket)},
    }


def _cost(requested: int, actual: int | None, bucket: Bucket) -> dict[str, Any]:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": throttle_status(bucket.maximum, bucket.available, bucket.restore_rate),
    }


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _oversized_input(
    operation: OperationDefinitionNode, variables: Mapping[str, Any] | None
) -> int | None:
    """The size of the first input list over the limit (literal or variable), if any."""
    pending: list[Any] = list((variables or {}).values())
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            if len(value) > MAX_INPUT_ARRAY:
                return len(value)
            pending.extend(value)
        elif isinstance(value, Mapping):
            pending.extend(value.values())
    found: list[int] = []

    class _Lists(Visitor):
        def enter_list_value(self, node: ListValueNode, *_: Any) -> None:
            if len(node.values) > MAX_INPUT_ARRAY:
                found.append(len(node.values))

    visit(operation, _Lists())
    return found[0] if found else None


def _root_fields(operation: OperationDefinitionNode) -> tuple[str, ...]:
    names: list[str] = []
    pending = list(operation.selection_set.selections)
    while pending:
        selection = pending.pop(0)
        if isinstance(selection, FieldNode):
            names.append(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            pending.extend(selection.selection_set.selections)
    return tuple(names)


def _format_execution_error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    if error.original_error is not None and not isinstance(error.original_error, GraphQLError):
        # An emulator bug, not a client mistake: say so instead of pretending it is Shopify's.
        formatted["extensions"] = {"code": "INTERNAL_SERVER_ERROR"}
        formatted["message"] = f"emulator error: {error.message}"
    return formatted


_VALIDATION_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], dict[str, Any]]]] = [
    (
        re.compile(r"^Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'"),
        lambda m: {
            "message": f"Field '{m['field']}' doesn't exist on type '{m['type']}'",
            "extensions": {
                "code": "undefinedField",
                "typeName": m["type"],
                "fieldName": m["field"],
            },
        },
    ),
    (
        re.compile(r"^Unknown argument '(?P<arg>\w+)' on field '(?P<type>\w+)\.(?P<field>\w+)'"),
        lambda m: {
            "message": f"Field '{m['field']}' doesn't accept argument '{m['arg']}'",
            "extensions": {
                "code": "argumentNotAccepted",
                "name": m["field"],
                "typeName": "Field",
                "argumentName": m["arg"],
            },
        },
    ),
    (
        re.compile(r"^Argument '\w+\.(?P<field>\w+)\((?P<arg>\w+):\)' of type .* is required"),
        lambda m: {
            "message": f"Field '{m['field']}' is missing required arguments: {m['arg']}",
            "extensions": {
                "code": "missingRequiredArguments",
                "className": "Field",
                "name": m["field"],
                "arguments": m["arg"],
            },
        },
    ),
    (
        re.compile(r"^Unknown type '(?P<type>\w+)'"),
        lambda m: {"extensions": {"code": "undefinedType", "typeName": m["type"]}},
    ),
    (
        re.compile(r"^Variable '\$(?P<var>\w+)' is never used"),
        lambda m: {"extensions": {"code": "variableNotUsed", "variableName": m["var"]}},
    ),
    (
        re.compile(r"^Variable '\$(?P<var>\w+)' is not defined"),
        lambda m: {"extensions": {"code": "variableNotDefined", "variableName": m["var"]}},
    ),
]


def shopify_validation_error(error: GraphQLError) -> dict[str, Any]:
    """A graphql-core validation error in the shape (and, where known, words) Shopify uses."""
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    for pattern, build in _VALIDATION_PATTERNS:
        match = pattern.match(error.message)
        if match:
            formatted.update(build(match))
            return formatted
    formatted["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED"}
    return formatted
