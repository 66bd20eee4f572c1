"""Shopify's calculated query cost and the per-shop leaky bucket.

Rules (shopify.dev, "GraphQL Admin API rate limits"; approximated where the docs leave room):

* a scalar or enum field costs 0, an object field 1 plus its selection; an interface or union
  costs the most expensive of its possible selections;
* a connection (a ``…Connection`` field taking ``first``/``last``) costs
  ``2 + n × (cost of one node)``, ``n`` being ``first``/``last`` for the requested cost and the
  number of nodes returned for the actual cost; ``edges``/``nodes`` over the same items are
  counted once, ``pageInfo`` and cursors are free;
* a plain list of objects taking ``first`` is sized by it (by 1 when it takes no size);
* every mutation root field costs 10 (its payload selection is not added);
* a single query may not request more than 1,000 points (``MAX_COST_EXCEEDED``);
* ``@skip``/``@include`` are ignored (the requested cost is an upper bound anyway).

The bucket (per app and shop) must hold the *requested* cost before a query runs, else the query
is refused as ``THROTTLED`` and nothing is charged; after execution the difference between the
requested and the *actual* cost is refunded. Bucket size and restore rate come from the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
)

MAX_QUERY_COST = 1000
MUTATION_COST = 10
CONNECTION_BASE_COST = 2


@dataclass(frozen=True)
class PlanLimits:
    """Bucket size and restore rate (points/second) of a Shopify plan, and how the plan shows
    in ``shop { plan { … } }``."""

    maximum_available: float
    restore_rate: float
    display_name: str
    shopify_plus: bool = False
    partner_development: bool = False


PLANS: Mapping[str, PlanLimits] = {
    "standard": PlanLimits(2000.0, 100.0, "Basic"),
    "advanced": PlanLimits(4000.0, 200.0, "Advanced"),
    "plus": PlanLimits(20000.0, 1000.0, "Shopify Plus", shopify_plus=True),
    "enterprise": PlanLimits(40000.0, 2000.0, "Commerce Components", shopify_plus=True),
    "development": PlanLimits(2000.0, 100.0, "Development", partner_development=True),
}


def plan_limits(plan: str) -> PlanLimits:
    try:
        return PLANS[plan]
    except KeyError:
        raise ValueError(f"unknown plan {plan!r}; one of {sorted(PLANS)}") from None


class QueryCost:
    """Requested and actual cost of one operation of a validated document."""

    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any] | None,
    ) -> None:
        self._schema = schema
        self._operation = operation
        self._fragments = fragments
        self._variables = dict(_variable_defaults(operation))
        self._variables.update(variables or {})

    def requested(self) -> int:
        return self._operation_cost(None)

    def actual(self, data: Mapping[str, Any] | None) -> int:
        return self._operation_cost(data if data is not None else {})

    # ---------------------------------------------------------------------------------------

    def _operation_cost(self, data: Mapping[str, Any] | None) -> int:
        op = self._operation
        if op.operation == OperationType.MUTATION:
            root = self._schema.mutation_type
            assert root is not None
            fields = self._collect(op.selection_set, root)
            if data is not None:
                fields = [f for f in fields if _key(f) in data]
            return MUTATION_COST * len(fields)
        root = self._schema.query_type
        assert root is not None
        return self._selection_cost(op.selection_set, root, data)

    def _selection_cost(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType, data: Any
    ) -> int:
        if selection_set is None:
            return 0
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):
            candidates = self._type_conditions(selection_set) or [parent]
            return max(self._fields_cost(selection_set, c, data) for c in candidates)
        return self._fields_cost(selection_set, parent, data)

    def _fields_cost(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, data: Any
    ) -> int:
        total = 0
        for node in self._collect(selection_set, parent):
            if node.name.value.startswith("__"):
                continue
            definition = _field(parent, node.name.value)
            if definition is None:
                continue
            total += self._field_cost(node, definition, data)
        return total

    def _field_cost(self, node: FieldNode, definition: GraphQLField, data: Any) -> int:
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        actual = data is not None
        value = data.get(_key(node)) if isinstance(data, Mapping) else None
        if actual and value is None:
            return 0  # not resolved, or null: nothing was loaded
        if _is_connection(named, definition):
            return self._connection_cost(node, named, value if actual else None, actual)
        if isinstance(get_nullable_type(definition.type), GraphQLList):
            if actual:
                items = value if isinstance(value, list) else []
                return sum(1 + self._selection_cost(node.selection_set, named, i) for i in items)
            size = self._size(node) if "first" in definition.args else 1
            return size * (1 + self._selection_cost(node.selection_set, named, None))
        return 1 + self._selection_cost(node.selection_set, named, value if actual else None)

    def _connection_cost(
        self, node: FieldNode, connection: GraphQLNamedType, value: Any, actual: bool
    ) -> int:
        assert isinstance(connection, GraphQLObjectType)
        node_type = get_named_type(connection.fields["nodes"].type)
        per_item: list[int] = []  # one entry per returned node (actual) or a single estimate
        for sub in self._collect(node.selection_set, connection):
            name = sub.name.value
            if name == "nodes":
                items = value.get(_key(sub)) if actual else [None]
                costs = [
                    1 + self._selection_cost(sub.selection_set, node_type, i) for i in items or []
                ]
            elif name == "edges":
                costs = []
                edges = value.get(_key(sub)) if actual else [None]
                for edge in edges or []:
                    cost = 0
                    for edge_field in self._collect(sub.selection_set, _edge_type(connection)):
                        if edge_field.name.value != "node":
                            continue
                        item = edge.get(_key(edge_field)) if actual and edge else None
                        cost = max(
                            cost,
                            1 + self._selection_cost(edge_field.selection_set, node_type, item),
                        )
                    costs.append(cost)
            else:
                continue  # pageInfo, cursors: free
            if sum(costs) > sum(per_item):
                per_item = costs
        if actual:
            return CONNECTION_BASE_COST + sum(per_item)
        return CONNECTION_BASE_COST + self._size(node) * (per_item[0] if per_item else 0)

    # ---------------------------------------------------------------------------------------

    def _size(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value in ("first", "last"):
                value = argument.value
                if isinstance(value, IntValueNode):
                    return int(value.value)
                if isinstance(value, VariableNode):
                    raw = self._variables.get(value.name.value)
                    if isinstance(raw, int) and not isinstance(raw, bool):
                        return raw
        return 0

    def _type_conditions(self, selection_set: SelectionSetNode) -> list[GraphQLNamedType]:
        found: list[GraphQLNamedType] = []
        for selection in selection_set.selections:
            condition = None
            if isinstance(selection, InlineFragmentNode) and selection.type_condition:
                condition = selection.type_condition.name.value
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                condition = fragment.type_condition.name.value if fragment else None
            named = self._schema.get_type(condition) if condition else None
            if named is not None and named not in found:
                found.append(named)
        return found

    def _collect(
        self, selection_set: SelectionSetNode | None, runtime: GraphQLNamedType
    ) -> list[FieldNode]:
        if selection_set is None:
            return []
        fields: list[FieldNode] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                fields.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    selection.type_condition.name.value if selection.type_condition else None
                )
                if self._applies(condition, runtime):
                    fields.extend(self._collect(selection.selection_set, runtime))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments.get(selection.name.value)
                if fragment and self._applies(fragment.type_condition.name.value, runtime):
                    fields.extend(self._collect(fragment.selection_set, runtime))
        return fields

    def _applies(self, condition: str | None, runtime: GraphQLNamedType) -> bool:
        if condition is None or condition == runtime.name:
            return True
        condition_type = self._schema.get_type(condition)
        if isinstance(condition_type, GraphQLInterfaceType | GraphQLUnionType) and isinstance(
            runtime, GraphQLObjectType | GraphQLInterfaceType
        ):
            return self._schema.is_sub_type(condition_type, runtime)
        return False


def _variable_defaults(operation: OperationDefinitionNode) -> Iterable[tuple[str, Any]]:
    for definition in operation.variable_definitions or ():
        default = definition.default_value
        if isinstance(default, IntValueNode):
            yield definition.variable.name.value, int(default.value)


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _field(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _is_connection(named: GraphQLNamedType, definition: GraphQLField) -> bool:
    return (
        isinstance(named, GraphQLObjectType)
        and named.name.endswith("Connection")
        and "nodes" in named.fields
        and ("first" in definition.args or "last" in definition.args)
    )


def _edge_type(connection: GraphQLObjectType) -> GraphQLNamedType:
    return get_named_type(connection.fields["edges"].type)


def throttle_status(maximum: float, available: float, restore_rate: float) -> dict[str, Any]:
    """``extensions.cost.throttleStatus`` as Shopify prints it (floats for the plan figures)."""
    return {
        "maximumAvailable": float(maximum),
        "currentlyAvailable": int(available),
        "restoreRate": float(restore_rate),
    }
