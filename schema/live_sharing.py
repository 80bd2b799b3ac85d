"""One execution of a subscription document per audience, not per socket.

A published event reaches thousands of sockets, and most of them subscribed with the
same document. Executing it field by field for each socket cost ~1.3 ms of CPU per
delivery (docs/performance.md). Subscribers whose answer must be equal (same document
and variables, same access class and role, same values for the viewer-dependent fields
of resolvers/live.py `PublishedEvent.prime`) share one execution: the first one runs it,
the others get its result.

That only holds for documents whose every field is covered by that audience. Fields
that depend on the viewer in other ways (a user's email, whether the viewer follows the
author, a tag's count of content the viewer may see, the author's other content) make a
document personal, and it keeps executing per socket.
"""

import contextlib
from collections import OrderedDict
from collections.abc import Awaitable, Hashable, Iterator
from inspect import isawaitable
from typing import Any

import orjson
from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from resolvers.context import Context
from resolvers.live import Delivery

# Per type, the fields whose value is the same for every subscriber of one audience.
SHARED_FIELDS: dict[str, frozenset[str]] = {
    "Subscription": frozenset({"contentPublished"}),
    "Content": frozenset(
        {
            "id",
            "title",
            "summary",
            "body",
            "bodyHtml",
            "status",
            "visibility",
            "language",
            "author",
            "tags",  # ordered by the viewer's weights and habits: part of the audience
            "reactionCount",
            "viewerHasReacted",  # part of the audience
            "createdAt",
            "updatedAt",
            "publishedAt",
        }
    ),
    "Tag": frozenset({"id", "name", "viewerAffinity"}),  # affinity: part of the audience
    "User": frozenset(
        {
            "id",
            "handle",
            "displayName",
            "bio",
            "role",
            "createdAt",
            "followerCount",
            "followingCount",
        }
    ),
}

MAX_REMEMBERED_DOCUMENTS = 512


@contextlib.contextmanager
def delivering(ctx: Context, root: object, delivery: Delivery) -> Iterator[None]:
    """Makes `delivery` known to the executor while `root` (a subscription's yielded
    value) is executed. Keyed by the value, because the operations of one WebSocket
    connection share a context and may execute at the same time."""
    ctx.deliveries[id(root)] = delivery
    try:
        yield
    finally:
        ctx.deliveries.pop(id(root), None)


class _Shareable:
    """Whether documents are shareable, remembered per document text and operation."""

    def __init__(self) -> None:
        self._known: OrderedDict[tuple[str, str | None], bool] = OrderedDict()

    def __call__(
        self,
        schema: GraphQLSchema,
        source: str,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
    ) -> bool:
        key = (source, operation.name.value if operation.name else None)
        known = self._known.get(key)
        if known is None:
            root = schema.subscription_type
            known = root is not None and _covered(schema, root, operation.selection_set, fragments)
            self._known[key] = known
            if len(self._known) > MAX_REMEMBERED_DOCUMENTS:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(key)
        return known


def _covered(
    schema: GraphQLSchema,
    parent: GraphQLObjectType,
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
) -> bool:
    """Whether every field selected below `parent` is in SHARED_FIELDS."""
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name == "__typename":
                continue
            if name not in SHARED_FIELDS.get(parent.name, frozenset()):
                return False
            if selection.selection_set is not None:
                child = get_named_type(parent.fields[name].type)
                if not isinstance(child, GraphQLObjectType) or not _covered(
                    schema, child, selection.selection_set, fragments
                ):
                    return False
            continue
        condition: NamedTypeNode | None
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                return False
            condition, inner = fragment.type_condition, fragment.selection_set
        elif isinstance(selection, InlineFragmentNode):
            condition, inner = selection.type_condition, selection.selection_set
        else:
            return False
        target = schema.get_type(condition.name.value) if condition is not None else parent
        if not isinstance(target, GraphQLObjectType) or not _covered(
            schema, target, inner, fragments
        ):
            return False
    return True


_shareable = _Shareable()


class SharingExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, executing a subscription event once per audience."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        deliveries = getattr(self.context_value, "deliveries", None)
        delivery = deliveries.get(id(self.root_value)) if deliveries else None
        document = self._document_key() if isinstance(delivery, Delivery) else None
        if delivery is None or document is None:
            return super().execute_operation(serially)
        execute = super().execute_operation

        async def run() -> Any:
            result = execute(serially)
            return await result if isawaitable(result) else result

        async def shared() -> ExecutionResult:
            result: ExecutionResult = await delivery.result(document, run)
            # Each subscriber's errors are classified and masked on its own result; the
            # shared data is only read.
            return ExecutionResult(
                result.data, list(result.errors) if result.errors else None, result.extensions
            )

        awaitable: Awaitable[ExecutionResult] = shared()
        return awaitable

    def _document_key(self) -> Hashable | None:
        return document_key(
            self.schema, self.operation, self.fragment_definitions, self.variable_values.coerced
        )


def document_key(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> Hashable | None:
    """What two subscribers' operations must share to get equal answers (with equal
    audiences); None for a personal document."""
    if operation.loc is None:
        return None
    source = operation.loc.source.body
    if not _shareable(schema, source, operation, fragments):
        return None
    encoded = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS, default=str)
    return (source, operation.name.value if operation.name else None, encoded)
