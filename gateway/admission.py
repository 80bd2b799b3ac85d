"""Charging operations to the rate limit where the plain path does not: operations
refused for their size, and every operation over WebSocket (the HTTP view charges what
it admits itself, gateway/graphql_view.py)."""

from dataclasses import dataclass
from typing import Any

from graphql import OperationType

from gateway.errors import QueryTooComplex, RateLimited
from gateway.limits import QueryLimits
from gateway.operation_guard import OperationGuard
from gateway.rate_limits import rate_key
from gateway.shared_rate_limits import SharedRateLimiter
from resolvers.context import Context
from resolvers.errors import GatewayError


async def charge_refused(limiter: SharedRateLimiter, limits: QueryLimits, key: str) -> None:
    """An operation refused for its size costs what the largest one allowed would: a
    client that keeps sending them runs out of budget like one that sends what fits.
    Once it has, RATE_LIMITED: it is told to wait rather than why it was refused."""
    retry_after = await limiter.charge(key, limits.max_cost)
    if retry_after is not None:
        raise RateLimited(retry_after)


@dataclass(frozen=True, slots=True)
class Admission:
    """A WebSocket operation's charge: the refusal (or None), whether it is a
    subscription (the others run under the request time budget), and its cost."""

    refusal: GatewayError | None
    subscription: bool
    cost: int


async def admit_ws_operation(
    guard: OperationGuard, limiter: SharedRateLimiter, context: Context, payload: Any
) -> Admission:
    """Charges a WebSocket operation to its viewer's (or address's) budget, as HTTP
    requests are charged. Documents the guard refuses cost the largest cost allowed if
    refused for their size, 1 otherwise; the schema extension says why."""
    query = payload.get("query") if isinstance(payload, dict) else None
    if not isinstance(query, str):
        return Admission(None, False, 0)  # refused as malformed (gateway/ws_handlers.py)
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    name = operation_name if isinstance(operation_name, str) else None
    subscription = False
    try:
        prepared = guard.prepare(query)
        operation = prepared.operation(name)
        subscription = operation is not None and operation.operation == OperationType.SUBSCRIPTION
        cost = guard.admit(prepared, name, variables if isinstance(variables, dict) else None)
    except QueryTooComplex:
        cost = guard.limits.max_cost
    except GatewayError:
        cost = 1
    retry_after = await limiter.charge(rate_key(context.viewer.id, context.client_address), cost)
    if retry_after is not None:
        return Admission(RateLimited(retry_after), subscription, cost)
    return Admission(None, subscription, cost)
