"""How big an operation is (depth, aliases, root fields, cost) and the limits it must fit.

Measured on the validated document before anything executes. Cost: every field costs
1; a connection (a field with a `first` argument) multiplies the cost of what is
selected under it by its page size, so nested pages multiply together. Lists without
`first` are small and bounded by the data model (at most 10 tags on an article), so
they count once. A page of 0 costs like a page of 1: its totalCount and pageInfo still
run. Fields that rank (`search`, `feed`) cost `ranking_cost` more, whatever their page
size: ranking reads and scores hundreds of candidates before the first item is known.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_named_type,
)
from graphql.type import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

from gateway.errors import QueryTooComplex

PAGE_ARGUMENT = "first"
# Root fields that rank a list (per viewer) before paging it.
RANKED_FIELDS = frozenset({"search", "feed"})
# Nested pages multiply quickly; past this the exact figure no longer matters, and it
# still fits the 64-bit integers JSON encoders accept.
COST_CEILING = 2**53


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 20
    max_aliases: int = 30
    max_root_fields: int = 20
    max_cost: int = 10_000
    max_tokens: int = 2_000
    max_query_length: int = 50_000
    max_page_size: int = 100
    ranking_cost: int = 500


@dataclass(frozen=True, slots=True)
class Measure:
    cost: int = 0
    depth: int = 0
    aliases: int = 0
    fields: int = 0  # fields directly in this selection set (fragments spread out)

    def __add__(self, other: "Measure") -> "Measure":
        return Measure(
            cost=min(self.cost + other.cost, COST_CEILING),
            depth=max(self.depth, other.depth),
            aliases=self.aliases + other.aliases,
            fields=self.fields + other.fields,
        )


class _Measurer:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        defaults: Mapping[str, Any],
        max_page_size: int,
        ranking_cost: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.defaults = defaults
        self.max_page_size = max_page_size
        self.ranking_cost = ranking_cost
        # A fragment measures the same wherever it is spread; remembering it keeps a
        # document that spreads fragments inside fragments linear to measure.
        self.by_fragment: dict[str, Measure] = {}

    def selection_set(self, selections: SelectionSetNode, parent: GraphQLNamedType) -> Measure:
        total = Measure()
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, inner or parent)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> Measure:
        if name not in self.by_fragment:
            definition = self.fragments[name]
            condition = self.schema.get_type(definition.type_condition.name.value)
            assert condition is not None  # the document passed validation
            self.by_fragment[name] = Measure()  # validation forbids cycles; belt and braces
            self.by_fragment[name] = self.selection_set(definition.selection_set, condition)
        return self.by_fragment[name]

    def field(self, node: FieldNode, parent: GraphQLNamedType) -> Measure:
        alias = 1 if node.alias else 0
        definition = self._definition(node.name.value, parent)
        if node.selection_set is None or definition is None:
            return Measure(cost=1, depth=1, aliases=alias, fields=1)
        inner = self.selection_set(node.selection_set, get_named_type(definition.type))
        own = 1
        if parent is self.schema.query_type and node.name.value in RANKED_FIELDS:
            own += self.ranking_cost
        return Measure(
            cost=min(own + self._page_size(node, definition) * inner.cost, COST_CEILING),
            depth=1 + inner.depth,
            aliases=alias + inner.aliases,
            fields=1,
        )

    def _definition(self, name: str, parent: GraphQLNamedType) -> GraphQLField | None:
        meta: GraphQLField
        if name == "__typename":
            meta = TypeNameMetaFieldDef
            return meta
        if parent is self.schema.query_type and name in ("__schema", "__type"):
            meta = SchemaMetaFieldDef if name == "__schema" else TypeMetaFieldDef
            return meta
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            found: GraphQLField | None = parent.fields.get(name)
            return found
        return None

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int:
        argument = definition.args.get(PAGE_ARGUMENT)
        if argument is None:
            return 1
        value: Any = None
        given = next((a.value for a in node.arguments or () if a.name.value == PAGE_ARGUMENT), None)
        if isinstance(given, IntValueNode):
            value = int(given.value)
        elif isinstance(given, VariableNode):
            name = given.name.value
            value = self.variables.get(name, self.defaults.get(name))
        if value is None and argument.default_value is not Undefined:
            value = argument.default_value
        if not isinstance(value, int) or isinstance(value, bool):
            value = self.max_page_size
        # Larger pages are refused by the resolvers, so they cannot cost more than this;
        # a page of 0 (or a negative one, refused too) still costs its totalCount and
        # pageInfo once.
        size: int = max(1, min(value, self.max_page_size))
        return size


def _variable_defaults(operation: OperationDefinitionNode) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        if isinstance(definition.default_value, IntValueNode):
            defaults[definition.variable.name.value] = int(definition.default_value.value)
    return defaults


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any] | None,
    *,
    max_page_size: int,
    ranking_cost: int = 0,
) -> Measure:
    """The size of one operation of a validated document, given the request's variables."""
    root = schema.get_root_type(operation.operation)
    assert root is not None  # the document passed validation
    measurer = _Measurer(
        schema,
        fragments,
        variables or {},
        _variable_defaults(operation),
        max_page_size,
        ranking_cost,
    )
    return measurer.selection_set(operation.selection_set, root)


def check(size: Measure, limits: QueryLimits) -> None:
    """Raises QueryTooComplex naming the first limit `size` is over, and by how much."""
    over = [
        ("query depth", size.depth, limits.max_depth),
        ("number of aliases", size.aliases, limits.max_aliases),
        ("number of root fields", size.fields, limits.max_root_fields),
        ("query cost", size.cost, limits.max_cost),
    ]
    for what, value, limit in over:
        if value > limit:
            raise QueryTooComplex(
                f"{what} {value:,} exceeds the limit of {limit:,}",
                limit=what,
                value=value,
                maximum=limit,
            )
