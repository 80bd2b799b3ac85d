"""What clients see of errors: contract codes for what they can act on, a generic
message and a request id for everything else (the detail goes to the log)."""

import logging
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from db.deadline import BudgetExhausted
from db.errors import DatabaseUnavailable, StatementTimeout
from resolvers.errors import BadUserInput, GatewayError, ServiceUnavailable

log = logging.getLogger("gateway.errors")

INTERNAL_MESSAGE = "Internal server error. Quote the requestId when reporting it."


class QueryTooComplex(GatewayError):
    """Over a size limit (depth, aliases, root fields, cost, tokens, length) or too slow
    for the database's statement timeout: the same request will fail again, a smaller
    one will not."""

    code = "QUERY_TOO_COMPLEX"


class RateLimited(GatewayError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many requests: this viewer's query budget is spent; retry in {retry_after} s.",
            retryAfter=retry_after,
        )
        self.retry_after = retry_after


class PersistedQueryNotFound(GatewayError):
    code = "PERSISTED_QUERY_NOT_FOUND"

    def __init__(self, message: str = "PersistedQueryNotFound") -> None:
        # Apollo's clients look for this exact message before sending the full query.
        super().__init__(message)


def statement_timed_out() -> QueryTooComplex:
    return QueryTooComplex(
        "The query took longer than the database's statement timeout and was cancelled; "
        "ask for fewer items (a smaller `first`) or fewer nested lists.",
        limit="statement timeout",
    )


def budget_exhausted(budget: float) -> QueryTooComplex:
    return QueryTooComplex(
        f"The request used up its time budget of {budget:g} s in the database and was "
        "cancelled; ask for less (a smaller `first`, fewer lists, fewer aliases) or split it "
        "into several requests.",
        limit="request time budget",
    )


def classify(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """The error as clients see it: a contract code, and for anything unexpected a
    generic message with the request id (the detail goes to the log)."""
    original = error.original_error
    if isinstance(original, GatewayError) or isinstance(error, GatewayError):
        return error
    if isinstance(original, DatabaseUnavailable):
        log.warning("database unavailable (request %s): %s", request_id, original)
        unavailable = ServiceUnavailable()
        return _relocate(error, unavailable.message, unavailable.extensions or {})
    if isinstance(original, BudgetExhausted):
        log.warning("time budget used up (request %s): %s", request_id, original)
        exhausted = budget_exhausted(original.budget)
        return _relocate(error, exhausted.message, exhausted.extensions or {})
    if isinstance(original, StatementTimeout):
        log.warning("statement timeout (request %s): %s", request_id, original)
        timed_out = statement_timed_out()
        return _relocate(error, timed_out.message, timed_out.extensions or {})
    if original is None or isinstance(original, GraphQLError):
        # Raised by parsing, validation or coercing variables (graphql-core wraps its
        # own GraphQLError): the document or its variables are wrong.
        extensions = {**(error.extensions or {}), "code": BadUserInput.code}
        return _relocate(error, error.message, extensions)
    log.error("unexpected error (request %s)", request_id, exc_info=original)
    return _relocate(
        error, INTERNAL_MESSAGE, {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    )


class ClassifyErrors(MaskErrors):
    """Gives every error of an operation a contract code (`classify`)."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        context: Any = self.execution_context.context
        request_id = getattr(context, "request_id", None)
        return [classify(error, request_id) for error in errors]


def _relocate(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    """A new error at the same place in the document and the result, with no trace of
    the original exception."""
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def error_codes(response: Any) -> set[str]:
    """The codes in a GraphQL-over-HTTP response body (a dict, or a list for batches)."""
    bodies = response if isinstance(response, list) else [response]
    return {
        str((error.get("extensions") or {}).get("code"))
        for body in bodies
        if isinstance(body, dict)
        for error in body.get("errors") or []
    }
