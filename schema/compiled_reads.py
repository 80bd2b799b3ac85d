"""The compiled read path: operations that have a plan (schema/compiled_plan.py) are
answered with one statement per list, whose rows Postgres has already turned into the
response's JSON, instead of executing the selection set field by field.

Resolving a page of 20 contents with author and tags costs graphql-core and strawberry
~15 ms of CPU in per-field work (docs/performance.md); this path skips all of it. It
answers exactly what the resolvers would: the arguments go through the same checks
(resolvers/content.py, resolvers/feed.py), access rules and paging are the same, and
tests run on both paths. Whenever this path cannot answer (a bad argument, the database
away, anything unexpected), it steps aside and the resolvers run the operation, so
errors are reported, classified and masked in one place.
"""

import logging
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from graphql import (
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.types.arguments import convert_arguments

from db.errors import DatabaseUnavailable, StatementTimeout
from resolvers import compiled
from resolvers.context import Context
from resolvers.errors import GatewayError
from resolvers.feed import Ranked
from resolvers.paging import Page
from schema.compiled_plan import ConnectionPlan, OperationPlan, Plans
from schema.root import contents_request, feed_request

log = logging.getLogger("gateway.compiled")


def _nothing() -> None:
    return None


class CompiledReader:
    """Answers planned operations of one schema, or says it cannot (None)."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.plans = Plans()
        # Told each time a planned operation is handed to the resolvers (a metric).
        self.on_fallback: Callable[[], None] = _nothing

    async def answer(
        self,
        query: str,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any] | None,
        ctx: Context,
    ) -> dict[str, Any] | None:
        plan = self.plans.get(query, operation, fragments)
        if plan is None:
            return None
        try:
            answered = await self._answer(plan, operation, variables, ctx)
        except (GatewayError, GraphQLError, DatabaseUnavailable, StatementTimeout):
            answered = None
        except Exception:
            log.exception("the compiled read path failed; the resolvers answer instead")
            answered = None
        if answered is None:
            self.on_fallback()
        return answered

    async def _answer(
        self,
        plan: OperationPlan,
        operation: OperationDefinitionNode,
        variables: dict[str, Any] | None,
        ctx: Context,
    ) -> dict[str, Any] | None:
        schema = self.schema
        graphql_schema: GraphQLSchema = schema._schema
        coerced = get_variable_values(
            graphql_schema, operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            return None  # bad variables: the resolver path reports them
        query_type = graphql_schema.query_type
        assert query_type is not None
        data: dict[str, Any] = {}
        for key, root in plan.roots:
            if root is None:
                data[key] = "Query"
                continue
            raw = get_argument_values(query_type.fields[root.field], root.node, coerced)
            field = schema.get_field_for_type(field_name=root.field, type_name="Query")
            assert field is not None
            kwargs = convert_arguments(
                raw,
                field.arguments,
                scalar_registry=schema.schema_converter.scalar_registry,
                config=schema.config,
            )
            data[key] = await _connection(root, ctx, kwargs)
        return data


_readers: "weakref.WeakKeyDictionary[Any, CompiledReader]" = weakref.WeakKeyDictionary()


def reader_for(schema: Any) -> CompiledReader:
    """The schema's reader (one per schema, so its plans are remembered across requests)."""
    reader = _readers.get(schema)
    if reader is None:
        reader = _readers[schema] = CompiledReader(schema)
    return reader


class CompiledReads(SchemaExtension):
    """Answers planned operations before strawberry executes them: for every transport
    and for operations that reach the schema directly. (The HTTP view asks the reader
    before strawberry starts, see gateway/graphql_view.py.)"""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name) if document else None
        ctx = context.context
        if (
            context.query
            and operation
            and document
            and isinstance(ctx, Context)
            and not ctx.compiled_read_tried
        ):
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            data = await reader_for(context.schema).answer(
                context.query, operation, fragments, context.variables, context.context
            )
            if data is not None:
                context.result = ExecutionResult(data=data, errors=None)
        yield


async def _connection(plan: ConnectionPlan, ctx: Context, kwargs: dict[str, Any]) -> dict[str, Any]:
    shape = plan.edges.node if plan.edges and plan.edges.node else compiled.ID_ONLY
    page: Page[Any]
    if plan.field == "contents":
        request = contents_request(
            kwargs.get("filter"), kwargs.get("order_by"), kwargs.get("first"), kwargs.get("after")
        )
        page = await compiled.contents_page(ctx, shape, **request, cursors=plan.selects_cursors)
    else:
        page = await compiled.feed_page(
            ctx, shape, **feed_request(kwargs.get("first"), kwargs.get("after"))
        )
    out: dict[str, Any] = {}
    for key, field in plan.fields:
        if field == "edges":
            assert plan.edges is not None
            out[key] = [_edge(plan, cursor, item) for cursor, item in page.edges]
        elif field == "pageInfo":
            out[key] = _page_info(plan, page)
        elif field == "totalCount":
            out[key] = await page.total_count()
        else:
            out[key] = plan.type_name
    return out


def _edge(plan: ConnectionPlan, cursor: str, item: Any) -> dict[str, Any]:
    assert plan.edges is not None
    node = item.content if isinstance(item, Ranked) else item
    out: dict[str, Any] = {}
    for key, field in plan.edges.fields:
        if field == "cursor":
            out[key] = cursor
        elif field == "node":
            out[key] = node
        elif field == "score":
            out[key] = round(item.score, 6)
        elif field == "reasons":
            out[key] = list(item.reasons)
        else:
            out[key] = plan.edges.type_name
    return out


def _page_info(plan: ConnectionPlan, page: Page[Any]) -> dict[str, Any]:
    values = {
        "hasNextPage": page.has_next,
        "hasPreviousPage": page.has_previous,
        "startCursor": page.start_cursor,
        "endCursor": page.end_cursor,
        "__typename": "PageInfo",
    }
    return {key: values[field] for key, field in plan.page_info}
