"""Which operations the compiled read path can answer, and how: the plan of a document.

A plan exists when every root field of a query is a list whose items Postgres can build
as JSON (db/queries/content_json.py): `contents` and `feed`, selecting connection
fields, edges and Content fields with their author and tags. Anything else (another
root field, a field with arguments inside a node, @skip/@include, a fragment on another
type, the same key selected twice) has no plan, and the operation runs through the
resolvers as always. A plan depends only on the document, so it is made once per
document and operation and remembered.
"""

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)

from db.queries.content_json import Shape, supports

# GraphQL field -> the name content_json knows it by, per type.
_FIELDS: dict[str, dict[str, str]] = {
    "Content": {
        "id": "id",
        "title": "title",
        "summary": "summary",
        "body": "body",
        "status": "status",
        "visibility": "visibility",
        "language": "language",
        "reactionCount": "reaction_count",
        "createdAt": "created_at",
        "updatedAt": "updated_at",
        "publishedAt": "published_at",
        "viewerHasReacted": "viewer_has_reacted",
        "__typename": "typename",
        "author": "author",
        "tags": "tags",
    },
    "User": {
        "id": "id",
        "handle": "handle",
        "displayName": "display_name",
        "bio": "bio",
        "role": "role",
        "createdAt": "created_at",
        "followerCount": "follower_count",
        "followingCount": "following_count",
        "viewerFollows": "viewer_follows",
        "__typename": "typename",
    },
    "Tag": {"id": "id", "name": "name", "__typename": "typename"},
}
_RELATED = {("Content", "author"): "User", ("Content", "tags"): "Tag"}
# What a connection's selections may be, per connection type.
_CONNECTION_FIELDS = {
    "ContentConnection": {"edges", "pageInfo", "totalCount", "__typename"},
    "FeedConnection": {"edges", "pageInfo", "__typename"},
}
_EDGE_FIELDS = {
    "ContentEdge": {"cursor", "node", "__typename"},
    "FeedEdge": {"cursor", "node", "score", "reasons", "__typename"},
}
_PAGE_INFO_FIELDS = {"hasNextPage", "hasPreviousPage", "startCursor", "endCursor", "__typename"}
_ROOTS = {"contents": ("ContentConnection", "ContentEdge"), "feed": ("FeedConnection", "FeedEdge")}
MAX_REMEMBERED = 500
# Characters of the documents whose plans are kept (~50 MB parsed, as the document cache).
MAX_CHARS = 500_000


class NotCompiled(Exception):
    """The document asks for something only the resolvers answer."""


@dataclass(frozen=True, slots=True)
class EdgePlan:
    type_name: str
    fields: tuple[tuple[str, str], ...]  # (key, field) in selection order, "node" included
    node: Shape | None


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    """One root field: `field` ("contents" or "feed") at `key`, from `node` (the field
    node, for its arguments), selecting `fields` of the connection in order."""

    key: str
    field: str
    node: FieldNode
    type_name: str
    fields: tuple[tuple[str, str], ...]  # (key, field), "edges" and "pageInfo" included
    edges: EdgePlan | None
    page_info: tuple[tuple[str, str], ...]

    @property
    def selects_cursors(self) -> bool:
        """Signing a cursor per edge is wasted when nobody reads them."""
        edge_cursor = self.edges is not None and any(f == "cursor" for _, f in self.edges.fields)
        return edge_cursor or any(f in {"startCursor", "endCursor"} for _, f in self.page_info)


@dataclass(frozen=True, slots=True)
class OperationPlan:
    """The root fields in order: a list's plan, or None for `__typename`."""

    roots: tuple[tuple[str, ConnectionPlan | None], ...]


def _selections(
    selection_set: SelectionSetNode | None,
    type_name: str,
    fragments: dict[str, FragmentDefinitionNode],
) -> Iterator[FieldNode]:
    """The fields selected on `type_name`, fragments on that same type flattened."""
    if selection_set is None:
        raise NotCompiled("a selection set is missing")
    for selection in selection_set.selections:
        if selection.directives:
            raise NotCompiled("directives")
        if isinstance(selection, FieldNode):
            yield selection
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None or fragment.type_condition.name.value != type_name:
                raise NotCompiled("a fragment on another type")
            if fragment.directives:
                raise NotCompiled("directives")
            yield from _selections(fragment.selection_set, type_name, fragments)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is not None and condition.name.value != type_name:
                raise NotCompiled("a fragment on another type")
            yield from _selections(selection.selection_set, type_name, fragments)


def _keyed(
    selection_set: SelectionSetNode | None,
    type_name: str,
    fragments: dict[str, FragmentDefinitionNode],
) -> list[tuple[str, FieldNode]]:
    keyed: list[tuple[str, FieldNode]] = []
    seen: set[str] = set()
    for field in _selections(selection_set, type_name, fragments):
        key = field.alias.value if field.alias else field.name.value
        if key in seen:
            # GraphQL merges the two selections; the compiled path does not.
            raise NotCompiled("a key selected twice")
        seen.add(key)
        keyed.append((key, field))
    return keyed


def _shape(
    selection_set: SelectionSetNode | None,
    type_name: str,
    fragments: dict[str, FragmentDefinitionNode],
) -> Shape:
    known = _FIELDS[type_name]
    fields: list[tuple[str, str, Shape | None]] = []
    for key, field in _keyed(selection_set, type_name, fragments):
        name = field.name.value
        if name not in known or field.arguments:
            raise NotCompiled(f"{type_name}.{name}")
        related = _RELATED.get((type_name, name))
        nested = _shape(field.selection_set, related, fragments) if related else None
        fields.append((key, known[name], nested))
    return Shape(type_name, tuple(fields))


def _plain(
    selection_set: SelectionSetNode | None,
    type_name: str,
    allowed: set[str],
    fragments: dict[str, FragmentDefinitionNode],
) -> list[tuple[str, FieldNode]]:
    keyed = _keyed(selection_set, type_name, fragments)
    for _, field in keyed:
        if field.name.value not in allowed or field.arguments:
            raise NotCompiled(f"{type_name}.{field.name.value}")
    return keyed


def _connection(
    key: str, field: FieldNode, fragments: dict[str, FragmentDefinitionNode]
) -> ConnectionPlan:
    connection_type, edge_type = _ROOTS[field.name.value]
    fields: list[tuple[str, str]] = []
    edges: EdgePlan | None = None
    page_info: tuple[tuple[str, str], ...] = ()
    selected = _plain(
        field.selection_set, connection_type, _CONNECTION_FIELDS[connection_type], fragments
    )
    for selected_key, selected_field in selected:
        name = selected_field.name.value
        if name == "edges":
            if edges is not None:
                raise NotCompiled("edges selected twice")
            edges = _edges(selected_field, edge_type, fragments)
        elif name == "pageInfo":
            if page_info:
                raise NotCompiled("pageInfo selected twice")
            keyed = _plain(selected_field.selection_set, "PageInfo", _PAGE_INFO_FIELDS, fragments)
            page_info = tuple((k, f.name.value) for k, f in keyed)
        fields.append((selected_key, name))
    return ConnectionPlan(
        key, field.name.value, field, connection_type, tuple(fields), edges, page_info
    )


def _edges(
    field: FieldNode, edge_type: str, fragments: dict[str, FragmentDefinitionNode]
) -> EdgePlan:
    fields: list[tuple[str, str]] = []
    node: Shape | None = None
    for key, selected in _plain(field.selection_set, edge_type, _EDGE_FIELDS[edge_type], fragments):
        if selected.name.value == "node":
            if node is not None:
                raise NotCompiled("node selected twice")
            node = _shape(selected.selection_set, "Content", fragments)
            if not supports(node):
                raise NotCompiled("a node shape content_json cannot build")
        fields.append((key, selected.name.value))
    return EdgePlan(edge_type, tuple(fields), node)


def plan_operation(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> OperationPlan | None:
    if operation.operation != OperationType.QUERY or operation.directives:
        return None
    try:
        roots: list[tuple[str, ConnectionPlan | None]] = []
        for key, field in _keyed(operation.selection_set, "Query", fragments):
            if field.name.value == "__typename":
                roots.append((key, None))
            elif field.name.value in _ROOTS:
                roots.append((key, _connection(key, field, fragments)))
            else:
                return None
    except NotCompiled:
        return None
    lists = [plan for _, plan in roots if plan is not None]
    if any(plan.field == "feed" for plan in lists) and len(lists) > 1:
        # A feed's first page stores its walk: if a later list failed, the resolvers
        # would run the operation again and store another.
        return None
    return OperationPlan(tuple(roots)) if lists else None


class Plans:
    """Plans by document text and operation name, the least recently used forgotten.

    A plan holds nodes of its parsed document (for the arguments), which keep the whole
    document alive: so, like the document cache (gateway/documents.py), the plans are
    bounded by the characters of their documents as well as by their number."""

    def __init__(self, maxsize: int = MAX_REMEMBERED, max_chars: int = MAX_CHARS) -> None:
        self.maxsize = maxsize
        self.max_chars = max_chars
        self._chars = 0
        self._plans: OrderedDict[tuple[str, str | None], OperationPlan | None] = OrderedDict()

    def get(
        self,
        query: str,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
    ) -> OperationPlan | None:
        key = (query, operation.name.value if operation.name else None)
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        plan = plan_operation(operation, fragments)
        if len(query) <= self.max_chars:
            self._plans[key] = plan
            self._chars += len(query)
            while len(self._plans) > self.maxsize or self._chars > self.max_chars:
                (evicted, _), _ = self._plans.popitem(last=False)
                self._chars -= len(evicted)
        return plan
