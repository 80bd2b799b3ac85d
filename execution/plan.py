"""What a document asks for, planned once per document: for each selection, which
registry field, relation or list serves it (db/reads/fields.py), found through the
schema's own types (a GraphQL field's Python name is its registry name). A plan holds
no request's values; binding.py gives it those.

Anything the registry cannot serve raises NotPlanned; the operation then runs through
strawberry, whose root fields compile their own selections (schema/root.py)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_directive_values
from graphql.type import GraphQLIncludeDirective, GraphQLSkipDirective

from db.reads.fields import ENTITIES

_BACKREF = "strawberry-definition"

# GraphQL object types whose values are entities of the registry.
ENTITY_OF_TYPE = {
    "Content": "content",
    "User": "user",
    "Tag": "tag",
    "Notification": "notification",
    "Preferences": "preferences",
    "TagWeight": "tag_weight",
    "EmailSettings": "email_settings",
    "Webhook": "webhook",
}
# Lists that are pages: (type, field) -> the kind of list (binding.py binds each).
CONNECTIONS = {
    ("Query", "contents"): "contents",
    ("Query", "feed"): "feed",
    ("Query", "search"): "search",
    ("Query", "tags"): "tags",
    ("Query", "notifications"): "notifications",
    ("User", "contents"): "user_contents",
}
# Root fields that find one object (or, `webhooks`, every one there is).
LOOKUPS = {"node", "content", "user", "viewer", "webhooks"}
NODE_TYPES = ("Content", "User", "Tag", "Notification", "Webhook")


def variables_of(info: Any) -> VariableValues:
    """The operation's coerced variables as graphql-core's execution holds them (its
    subscriptions hand resolvers a plain dict instead)."""
    found = info.variable_values
    return found if isinstance(found, VariableValues) else VariableValues({}, dict(found))


class NotPlanned(Exception):
    """Something in the document has no SQL to serve it."""


@dataclass(frozen=True, slots=True)
class Leaf:
    key: str
    field: str
    nullable: bool
    derive: Callable[[Any, Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class Typename:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Child:
    """A related object (or list of them)."""

    key: str
    relation: str
    obj: "ObjectPlan"
    nullable: bool
    many: bool


@dataclass(frozen=True, slots=True)
class Connection:
    """A page of a list, and what of the connection, its edges and pageInfo is asked."""

    key: str
    kind: str
    node: FieldNode
    definition: GraphQLField
    slot: int
    nullable: bool
    type_name: str
    selections: tuple[tuple[str, str], ...]  # (key, field) of the connection
    edge_type: str | None = None
    edge: tuple[tuple[str, str], ...] = ()
    item: "ObjectPlan | None" = None
    page_info: tuple[tuple[str, str], ...] = ()

    @property
    def cursors(self) -> bool:
        """Whether any cursor is read (signing them, or storing a walk, costs)."""
        return any(f == "cursor" for _, f in self.edge) or any(
            f in {"startCursor", "endCursor"} for _, f in self.page_info
        )

    @property
    def total(self) -> bool:
        return any(f == "totalCount" for _, f in self.selections)

    @property
    def reasons(self) -> bool:
        return any(f == "reasons" for _, f in self.edge)


Member = Leaf | Typename | Child | Connection


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    type_name: str
    entity: str
    members: tuple[Member, ...]
    # Nothing in it (or below it) needs Python once Postgres has built it.
    pure: bool


@dataclass(frozen=True, slots=True)
class Lookup:
    """A root field that finds one object: by id (`node`, `content`), by handle, or the
    viewer. `objects` has the plan per type the object may turn out to be."""

    key: str
    name: str
    node: FieldNode
    definition: GraphQLField
    slot: int
    nullable: bool
    objects: dict[str, ObjectPlan]


@dataclass(frozen=True, slots=True)
class RootTypename:
    key: str


Root = Lookup | Connection | RootTypename


@dataclass(frozen=True, slots=True)
class OperationPlan:
    roots: tuple[Root, ...]
    slots: int
    # A cheap identity for caches keyed by plan and request decisions.
    serial: int = field(default=0, compare=False)


class Planner:
    """Plans selections against one schema. `variables` matter only for @skip and
    @include; callers key their caches by the values of `directive_variables`."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema

    def operation(
        self,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> OperationPlan:
        if operation.operation is not OperationType.QUERY:
            raise NotPlanned("only queries are planned whole")
        query_type = self.schema.query_type
        assert query_type is not None
        walk = _Walk(self.schema, fragments, variables)
        roots: list[Root] = []
        for key, nodes in walk.collect(operation.selection_set, query_type).items():
            roots.append(walk.root(key, nodes, query_type))
        return OperationPlan(tuple(roots), walk.slots)

    def field(
        self,
        parent: GraphQLObjectType,
        nodes: list[FieldNode],
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> tuple[Root, int]:
        """One root field (strawberry resolves it: schema/root.py), with its slot count."""
        walk = _Walk(self.schema, fragments, variables)
        key = nodes[0].alias.value if nodes[0].alias else nodes[0].name.value
        return walk.root(key, nodes, parent), walk.slots

    def object(
        self,
        type_name: str,
        nodes: list[FieldNode],
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> tuple[ObjectPlan, int]:
        """The selection of the fields `nodes` (all of one response key) on `type_name`:
        what a mutation returns, or a live event's payload."""
        walk = _Walk(self.schema, fragments, variables)
        object_type = self.schema.get_type(type_name)
        assert isinstance(object_type, GraphQLObjectType)
        return walk.object_plan(object_type, walk.merged(nodes, object_type)), walk.slots

    def event(
        self,
        type_name: str,
        nodes: list[FieldNode],
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> tuple[tuple[tuple[str, str | int], ...], tuple[ObjectPlan, ...]]:
        """The selection of a live event type (ContentEvent: its `cursor` and the object
        it carries): for each response key, "cursor", "typename" or the index of the
        plan of the object it selects."""
        walk = _Walk(self.schema, fragments, variables)
        event_type = self.schema.get_type(type_name)
        assert isinstance(event_type, GraphQLObjectType)
        fields: list[tuple[str, str | int]] = []
        plans: list[ObjectPlan] = []
        for key, found in walk.merged(nodes, event_type).items():
            name = found[0].name.value
            if name in ("cursor", "__typename"):
                fields.append((key, "cursor" if name == "cursor" else "typename"))
                continue
            named = get_named_type(event_type.fields[name].type)
            assert isinstance(named, GraphQLObjectType)
            plans.append(walk.object_plan(named, walk.merged(found, named)))
            fields.append((key, len(plans) - 1))
        return tuple(fields), tuple(plans)


def directive_variables(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[str, ...]:
    """The variables @skip and @include read: a plan depends on their values."""
    found: list[str] = []

    def visit(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            for directive in selection.directives or ():
                for argument in directive.arguments or ():
                    name = getattr(argument.value, "name", None)
                    if name is not None and name.value not in found:
                        found.append(name.value)
            if isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    visit(fragment.selection_set)
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                visit(selection.selection_set)

    visit(operation.selection_set)
    return tuple(found)


def _unwrap(type_: GraphQLOutputType) -> tuple[bool, bool, bool, GraphQLNamedType]:
    """(nullable, is list, items nullable, named type)."""
    nullable = not isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLList):
        item = inner.of_type
        return nullable, True, not isinstance(item, GraphQLNonNull), get_named_type(item)
    return nullable, False, nullable, get_named_type(inner)


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.slots = 0

    def slot(self) -> int:
        self.slots += 1
        return self.slots - 1

    # --- collecting fields (GraphQL's CollectFields) --------------------------------

    def _included(self, node: Any) -> bool:
        skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        return not (include is not None and include.get("if") is False)

    def _applies(self, condition: str | None, object_type: GraphQLObjectType) -> bool:
        if condition is None or condition == object_type.name:
            return True
        named = self.schema.get_type(condition)
        if isinstance(named, GraphQLInterfaceType):
            return self.schema.is_sub_type(named, object_type)
        return False

    def _fields(
        self, selection_set: SelectionSetNode, object_type: GraphQLObjectType
    ) -> Iterator[FieldNode]:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                condition = (
                    selection.type_condition.name.value if selection.type_condition else None
                )
                if self._applies(condition, object_type):
                    yield from self._fields(selection.selection_set, object_type)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None and self._applies(
                    fragment.type_condition.name.value, object_type
                ):
                    yield from self._fields(fragment.selection_set, object_type)

    def collect(
        self, selection_set: SelectionSetNode | None, object_type: GraphQLObjectType
    ) -> dict[str, list[FieldNode]]:
        grouped: dict[str, list[FieldNode]] = {}
        if selection_set is None:
            return grouped
        for node in self._fields(selection_set, object_type):
            key = node.alias.value if node.alias else node.name.value
            grouped.setdefault(key, []).append(node)
        return grouped

    def merged(
        self, nodes: list[FieldNode], object_type: GraphQLObjectType
    ) -> dict[str, list[FieldNode]]:
        """The sub-fields of every node of one response key (GraphQL merges them)."""
        grouped: dict[str, list[FieldNode]] = {}
        for node in nodes:
            for key, found in self.collect(node.selection_set, object_type).items():
                grouped.setdefault(key, []).extend(found)
        return grouped

    # --- planning ---------------------------------------------------------------------

    def object_plan(
        self, object_type: GraphQLObjectType, fields: dict[str, list[FieldNode]]
    ) -> ObjectPlan:
        entity_name = ENTITY_OF_TYPE.get(object_type.name)
        if entity_name is None:
            raise NotPlanned(f"{object_type.name} is not an entity")
        entity = ENTITIES[entity_name]
        members: list[Member] = []
        for key, nodes in fields.items():
            name = nodes[0].name.value
            if name == "__typename":
                members.append(Typename(key, object_type.name))
                continue
            definition = object_type.fields.get(name)
            if definition is None:
                raise NotPlanned(f"{object_type.name}.{name}")
            nullable, many, _, named = _unwrap(definition.type)
            connection = CONNECTIONS.get((object_type.name, name))
            if connection is not None:
                members.append(self.connection(key, connection, nodes, definition))
                continue
            if any(node.arguments for node in nodes):
                raise NotPlanned(f"{object_type.name}.{name} takes arguments")
            strawberry_field = definition.extensions.get(_BACKREF)
            python_name = strawberry_field.python_name if strawberry_field else name
            metadata = strawberry_field.metadata if strawberry_field else {}
            if metadata.get("derive") is not None:
                members.append(Leaf(key, metadata["source"], nullable, metadata["derive"]))
            elif python_name in entity.fields:
                members.append(Leaf(key, python_name, nullable))
            elif python_name in entity.relations and isinstance(named, GraphQLObjectType):
                child = self.object_plan(named, self.merged(nodes, named))
                members.append(Child(key, python_name, child, nullable, many))
            else:
                raise NotPlanned(f"{object_type.name}.{name} has no SQL")
        pure = all(
            (isinstance(m, Leaf | Typename) and not (isinstance(m, Leaf) and m.derive))
            or (isinstance(m, Child) and m.obj.pure)
            for m in members
        )
        return ObjectPlan(object_type.name, entity_name, tuple(members), pure)

    def _plain(
        self, nodes: list[FieldNode], object_type: GraphQLObjectType, allowed: set[str]
    ) -> tuple[tuple[str, str], ...]:
        found: list[tuple[str, str]] = []
        for key, sub in self.merged(nodes, object_type).items():
            name = sub[0].name.value
            if name not in allowed:
                raise NotPlanned(f"{object_type.name}.{name}")
            found.append((key, name))
        return tuple(found)

    def connection(
        self, key: str, kind: str, nodes: list[FieldNode], definition: GraphQLField
    ) -> Connection:
        if any(_differs(nodes[0], node) for node in nodes[1:]):
            raise NotPlanned("one key, different arguments")
        nullable, _, _, connection_type = _unwrap(definition.type)
        assert isinstance(connection_type, GraphQLObjectType)
        selections: list[tuple[str, str]] = []
        edge: tuple[tuple[str, str], ...] = ()
        page_info: tuple[tuple[str, str], ...] = ()
        item: ObjectPlan | None = None
        edge_type_name: str | None = None
        for sub_key, sub in self.merged(nodes, connection_type).items():
            name = sub[0].name.value
            selections.append((sub_key, name))
            if name == "edges":
                if edge:
                    raise NotPlanned("edges selected under two keys")
                edge_type = get_named_type(connection_type.fields["edges"].type)
                assert isinstance(edge_type, GraphQLObjectType)
                edge_type_name = edge_type.name
                edge = self._plain(sub, edge_type, set(edge_type.fields) | {"__typename"})
                nodes_of_items = [n for e in sub for n in self._item_nodes(e, edge_type)]
                node_type = get_named_type(edge_type.fields["node"].type)
                assert isinstance(node_type, GraphQLObjectType)
                if nodes_of_items:
                    item = self.object_plan(node_type, self.merged(nodes_of_items, node_type))
            elif name == "pageInfo":
                if page_info:
                    raise NotPlanned("pageInfo selected under two keys")
                info_type = get_named_type(connection_type.fields["pageInfo"].type)
                assert isinstance(info_type, GraphQLObjectType)
                page_info = self._plain(sub, info_type, set(info_type.fields) | {"__typename"})
            elif name not in {"totalCount", "__typename"}:
                raise NotPlanned(f"{connection_type.name}.{name}")
        keys = [k for k, f in edge if f == "node"]
        if len(keys) > 1:
            raise NotPlanned("node selected under two keys")
        return Connection(
            key,
            kind,
            nodes[0],
            definition,
            self.slot(),
            nullable,
            connection_type.name,
            tuple(selections),
            edge_type_name,
            edge,
            item,
            page_info,
        )

    def _item_nodes(self, edges_node: FieldNode, edge_type: GraphQLObjectType) -> list[FieldNode]:
        return (
            [n for n in self._fields(edges_node.selection_set, edge_type) if n.name.value == "node"]
            if edges_node.selection_set
            else []
        )

    def root(self, key: str, nodes: list[FieldNode], query_type: GraphQLObjectType) -> Root:
        name = nodes[0].name.value
        if name == "__typename":
            return RootTypename(key)
        definition = query_type.fields.get(name)
        if definition is None:
            raise NotPlanned(name)
        kind = CONNECTIONS.get((query_type.name, name))
        if kind is not None:
            return self.connection(key, kind, nodes, definition)
        if name not in LOOKUPS:
            raise NotPlanned(name)
        if any(_differs(nodes[0], node) for node in nodes[1:]):
            raise NotPlanned("one key, different arguments")
        nullable, _, _, named = _unwrap(definition.type)
        candidates = NODE_TYPES if name == "node" else (named.name,)
        objects: dict[str, ObjectPlan] = {}
        for type_name in candidates:
            object_type = self.schema.get_type(type_name)
            assert isinstance(object_type, GraphQLObjectType)
            objects[type_name] = self.object_plan(object_type, self.merged(nodes, object_type))
        return Lookup(key, name, nodes[0], definition, self.slot(), nullable, objects)


def _differs(a: FieldNode, b: FieldNode) -> bool:
    from graphql import print_ast

    return [print_ast(x) for x in a.arguments or ()] != [print_ast(x) for x in b.arguments or ()]


# What a live event's audience holds (db/reads/audience.py): answers that depend on no
# more than these (besides the kind of viewer) are built once per audience.
AUDIENCE_FIELDS = {("content", "viewer_has_reacted"), ("tag", "viewer_affinity")}
AUDIENCE_RELATIONS = {("content", "tags")}


def beyond_audience(plan: ObjectPlan) -> bool:
    """Whether the answer depends on the viewer beyond what an audience holds (a user's
    email, whom they follow, a list of what they may see...)."""
    entity = ENTITIES[plan.entity]
    for member in plan.members:
        if isinstance(member, Connection):
            return True
        if isinstance(member, Leaf):
            registered = entity.fields.get(member.field)
            if (
                registered is not None
                and registered.personal
                and (plan.entity, member.field) not in AUDIENCE_FIELDS
            ):
                return True
        elif isinstance(member, Child):
            relation = entity.relations[member.relation]
            if relation.personal and (plan.entity, member.relation) not in AUDIENCE_RELATIONS:
                return True
            if beyond_audience(member.obj):
                return True
    return False


def uses_audience(plan: ObjectPlan, name: str) -> bool:
    """Whether the plan reads the audience value `name`: "viewer_has_reacted", or
    "tags" (the viewer's affinities order a content's tags and fill viewerAffinity)."""
    for member in plan.members:
        if isinstance(member, Leaf) and member.field == name:
            return True
        if isinstance(member, Child) and (
            member.relation == name or uses_audience(member.obj, name)
        ):
            return True
    return False
