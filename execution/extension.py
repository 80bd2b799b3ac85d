"""Whole queries answered before strawberry executes them, for every way an operation
reaches the schema other than the HTTP view (which asks first, gateway/graphql_view.py):
WebSocket operations, and callers in the same process (tests, benchmarks)."""

from collections.abc import AsyncIterator

from graphql import ExecutionResult, FragmentDefinitionNode, OperationType
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from execution.executor import Executor
from resolvers.context import Context


class WholeQueries(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name) if document else None
        ctx = context.context
        if (
            context.query
            and operation
            and operation.operation is OperationType.QUERY
            and document
            and isinstance(ctx, Context)
            and isinstance(ctx.reads, Executor)
            and not ctx.compiled_read_tried
        ):
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            answer = await ctx.reads.answer(
                context.query, operation, fragments, context.variables, ctx
            )
            if answer is not None:
                context.result = ExecutionResult(data=answer.data, errors=answer.errors or None)
        yield
