"""Prometheus metrics: the series, and /metrics in the text format.

With several workers (`gateway serve --workers N`) every worker writes its samples to
files in PROMETHEUS_MULTIPROC_DIR, which `serve` creates (and empties) before the
workers start, and any worker's /metrics adds them all up. That variable must be set
before prometheus_client is first imported, so this module is imported only by the
app, never by the CLI before it has chosen the folder.
"""

import hmac
import os
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import Response

from gateway.metric_batches import PendingSamples

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_pid = os.getpid()


def _process_id() -> int:
    return _pid


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if os.environ.get(MULTIPROC_ENV):
    # prometheus_client asks os.getpid() on every increment, to notice a fork; a system
    # call that cost more than the increment. The pid is kept instead, and renewed in
    # the child of a fork (uvicorn spawns its workers, which import this afresh).
    os.register_at_fork(after_in_child=_forked)
    values.ValueClass = values.MultiProcessValue(process_identifier=_process_id)  # type: ignore[no-untyped-call]
# Requests: most answer in milliseconds; the tail is what matters.
REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STATEMENT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

# The series are module-level, not built per app: prometheus_client registers each name
# once per process and, with several workers, backs it by this process's files.
REQUESTS = Counter(
    "graphql_requests",
    "GraphQL operations over HTTP, by operation type, name (bounded) and outcome.",
    ["operation_type", "operation_name", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "graphql_request_duration_seconds",
    "Time from receiving a GraphQL request to its response, in seconds.",
    ["operation_type", "operation_name"],
    buckets=REQUEST_BUCKETS,
)
ERRORS = Counter("graphql_errors", "GraphQL errors in responses, by code.", ["code"])
STATEMENTS = Counter("gateway_db_statements", "SQL statements sent to Postgres.")
STATEMENT_SECONDS = Histogram(
    "gateway_db_statement_duration_seconds",
    "Time one SQL statement took, as the gateway saw it, in seconds.",
    buckets=STATEMENT_BUCKETS,
)
POOL_CONNECTIONS = Gauge(
    "gateway_db_pool_connections",
    "Connections to the primary held by the pools, by state (in_use, idle).",
    ["state"],
    multiprocess_mode="livesum",
)
WEBSOCKETS = Gauge(
    "gateway_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum"
)
SUBSCRIPTIONS = Gauge(
    "gateway_subscriptions",
    "Running subscriptions, by root field.",
    ["field"],
    multiprocess_mode="livesum",
)
EVENTS_DELIVERED = Counter(
    "gateway_events_delivered", "Subscription events written to WebSocket clients."
)
RATE_LIMITED = Counter(
    "gateway_rate_limited", "Requests refused because the viewer's budget was spent."
)
COMPILED_FALLBACKS = Counter(
    "gateway_compiled_fallbacks",
    "Queries the whole-query path (execution/) had no plan for and left to the resolvers.",
)
REPLICA_LAG = Gauge(
    "gateway_db_replica_lag_seconds",
    "How far each read replica's replay is behind the primary, in seconds (as last checked).",
    ["replica"],
    multiprocess_mode="livemax",
)
REPLICA_HEALTHY = Gauge(
    "gateway_db_replica_healthy",
    "1 while a read replica is reachable and within the allowed lag, else 0.",
    ["replica"],
    multiprocess_mode="livemin",
)


# What requests and statements add, written to the series above once a second
# (gateway/metric_batches.py says why).
PENDING = PendingSamples()


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition() -> bytes:
    """Every series in the text format: all workers' when there are several, this one's
    samples up to this moment."""
    PENDING.flush()
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def process_exited() -> None:
    """Writes this worker's last samples and drops its live gauges from the shared
    folder (its counters stay)."""
    PENDING.flush()
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def metrics_endpoint(
    token: str | None, refresh: Callable[[], Awaitable[None]] | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """/metrics; with a token, only for `Authorization: Bearer <token>`."""
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(
                    "metrics need the bearer token set in GATEWAY_METRICS_TOKEN\n",
                    401,
                    {"WWW-Authenticate": "Bearer"},
                    media_type="text/plain",
                )
        if refresh is not None:
            await refresh()
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics
