"""What must hold before an operation executes, on every transport: the document is
short enough, trusted (when only trusted documents may run), parses under the token
limit, validates, and fits the depth, alias, root-field and cost limits.

The HTTP view asks first (it needs the cost to charge the rate limit, and answers
refusals with HTTP statuses); the schema extension asks again for every operation, so
WebSocket operations and anything else that reaches the schema meet the same rules.
The second time costs a cache hit and one walk over the document.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from graphql import GraphQLError, GraphQLSchema
from strawberry.extensions import SchemaExtension

from gateway.documents import DocumentCache, PreparedDocument
from gateway.errors import QueryTooComplex
from gateway.limits import QueryLimits, check, measure
from gateway.persisted_queries import TrustedDocuments
from gateway.text_inputs import check_variables
from resolvers.errors import GatewayError

MAX_SIZES_PER_DOCUMENT = 64


class OperationGuard:
    def __init__(
        self,
        schema: GraphQLSchema,
        limits: QueryLimits,
        *,
        introspection: bool = True,
        trusted: TrustedDocuments | None = None,
        cache_size: int = 500,
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.trusted = trusted
        self.documents = DocumentCache(
            schema, max_tokens=limits.max_tokens, introspection=introspection, maxsize=cache_size
        )

    def prepare(self, query: str) -> PreparedDocument:
        """The parsed and validated document; raises for text that may not even be parsed.
        A document over the token limit comes back with a QueryTooComplex as its error."""
        if len(query) > self.limits.max_query_length:
            raise QueryTooComplex(
                f"query length {len(query):,} characters exceeds the limit of "
                f"{self.limits.max_query_length:,}",
                limit="query length",
                value=len(query),
                maximum=self.limits.max_query_length,
            )
        if self.trusted is not None:
            self.trusted.require_text(query)
        return self.documents.get(query)

    def admit(
        self,
        prepared: PreparedDocument,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> int:
        """The cost of a valid document's operation; raises QueryTooComplex when it is over
        a limit. Invalid documents cost 1: executing them only reports their errors."""
        operation = prepared.operation(operation_name) if prepared.valid else None
        if operation is None:
            return 1
        check_variables(variables)
        try:
            key = (operation_name, orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS))
        except TypeError:
            key = None  # variables orjson cannot write are measured every time
        size = prepared.sizes.get(key) if key is not None else None
        if size is None:
            size = measure(
                self.schema,
                operation,
                prepared.fragments,
                variables,
                max_page_size=self.limits.max_page_size,
                ranking_cost=self.limits.ranking_cost,
            )
            if key is not None and len(prepared.sizes) < MAX_SIZES_PER_DOCUMENT:
                prepared.sizes[key] = size
        check(size, self.limits)
        return max(size.cost, 1)


class GuardOperations(SchemaExtension):
    """Hands strawberry the cached document and validation result, and refuses what the
    guard refuses before execution starts."""

    def __init__(self, guard: OperationGuard) -> None:
        self.guard = guard
        self.prepared: PreparedDocument | None = None
        # Refused before parsing: strawberry still parses (under the same token limit)
        # and its errors are replaced by this one.
        self.refusal: GraphQLError | None = None

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.guard.limits.max_tokens
        yield
        result = self.execution_context.result
        if self.refusal is not None and result is not None and result.errors:
            result.errors = [self.refusal]

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query:
            try:
                self.prepared = self.guard.prepare(query)
            except GatewayError as refusal:
                self.refusal = refusal
            else:
                if self.prepared.document is not None:
                    self.execution_context.graphql_document = self.prepared.document
                elif isinstance(self.prepared.errors[0], GatewayError):
                    self.refusal = self.prepared.errors[0]
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.refusal is not None:
            context.pre_execution_errors = [self.refusal]
        elif self.prepared is not None and self.prepared.errors:
            context.pre_execution_errors = list(self.prepared.errors)
        elif self.prepared is not None:
            try:
                self.guard.admit(self.prepared, context.operation_name, context.variables)
            except GatewayError as refusal:
                context.pre_execution_errors = [refusal]
            else:
                context.pre_execution_errors = []  # validated when it was cached
        yield
