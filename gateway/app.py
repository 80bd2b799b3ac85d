"""The ASGI application: routes, middleware and the lifetime of the database pool."""

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from db.feed.rebuild import rebuild
from db.instrument import StatementObservers, pool_connections
from db.log_follower import LogFollower, keep_pruning
from db.notify import EventBus
from db.read_pool import ReadPool
from db.replicas import Replica, ReplicaSet
from db.session import Database, create_engine
from db.wakeups import Wakeups
from execution.broadcast import Broadcaster
from execution.executor import Executor
from execution.extension import WholeQueries
from gateway import metrics, observe
from gateway.account_pages import AccountPages
from gateway.auth import Passwords, Tokens
from gateway.compression import CompressResponses
from gateway.connections import OPEN_KEY as OPEN_CONNECTIONS
from gateway.connections import STATE_KEY as CONNECTION_LIMITS
from gateway.connections import ConnectionLimits, OpenConnections
from gateway.errors import ClassifyErrors
from gateway.explorer import asset_route
from gateway.feed_worker import FeedWorker
from gateway.graphql_view import GraphQLView
from gateway.health import healthz, readyz_endpoint
from gateway.mailer import mailer_for
from gateway.metric_batches import FLUSH_SECONDS
from gateway.operation_guard import GuardOperations, OperationGuard
from gateway.persisted_queries import PersistedQueries, TrustedDocuments
from gateway.rate_limits import RateLimiter
from gateway.request_body import RequestBodyLimits
from gateway.request_encoding import DecodeRequestBodies
from gateway.request_id import RequestIdMiddleware
from gateway.runtime import tune_garbage_collector
from gateway.settings import Settings, load_or_create_secret
from gateway.shared_rate_limits import SharedRateLimiter
from gateway.shutdown import Draining, drain_before_exit
from gateway.tracing import Tracing
from gateway.webhook_client import WebhookClient
from gateway.websocket_route import WebSocketsStraight
from gateway.worker import DeliveryWorker
from resolvers.cursors import CursorCodec
from resolvers.outreach import Outreach
from schema import build_schema

log = logging.getLogger(__name__)

# Smaller responses gain less from compression than it costs to compress them.
COMPRESS_MINIMUM_BYTES = 1_000
# How often each process writes its pools' connection counts, and the samples its
# requests gathered (gateway/metric_batches.py), to the metrics.
METRICS_UPDATE_SECONDS = FLUSH_SECONDS


def create_app(
    settings: Settings, *, database: Database | None = None, bus: EventBus | None = None
) -> Starlette:
    """The gateway. `settings.database_url` must be resolved (the CLI starts an embedded
    server when none is configured); tests may hand in a `database` and `bus` of their own."""
    if bus is None and settings.database_url:
        bus = EventBus(settings.database_url)
    own_database = database is None
    if database is None:
        if not settings.database_url:
            raise ValueError("create_app needs settings.database_url or a database")
        url = settings.database_url
        size, timeout = settings.db_pool_size, settings.db_connect_timeout
        statement_timeout = settings.db_statement_timeout or None
        database = Database(
            create_engine(
                url, pool_size=size, connect_timeout=timeout, statement_timeout=statement_timeout
            ),
            reads=ReadPool(
                url, size=size, connect_timeout=timeout, statement_timeout=statement_timeout
            ),
        )
    if settings.replica_urls and database.reads is not None and database.replicas is None:
        database.replicas = _replica_set(settings, database, bus)
    database.events = settings.events
    secret = settings.secret_key or load_or_create_secret(settings.data_dir)
    outreach = settings.outreach(secret)
    passwords = Passwords()
    trusted = (
        TrustedDocuments.load(settings.trusted_documents) if settings.trusted_documents else None
    )
    # The guard's extension comes last so that it leaves an operation first: the errors
    # it puts in place are then classified like any other. It is made per operation,
    # after the guard below exists.
    guard: OperationGuard
    extensions: list[Any] = [ClassifyErrors, lambda: GuardOperations(guard)]
    if settings.whole_queries:
        extensions.append(WholeQueries)
    schema = build_schema(extensions=extensions)
    weights = settings.ranking.weights()
    executor = Executor(schema, weights, functools.partial(rebuild, weights=weights))
    observer = observe.Observer(
        metrics_on=settings.metrics,
        slow_seconds=settings.slow_request_ms / 1000 or None,
        operation_names=settings.metrics_operation_names,
    )
    # This app's, not the process's: tests build several apps in one process.
    statements = StatementObservers()
    statements.add(observer.statement)
    tracing = Tracing(settings.otel_service_name) if settings.otel_endpoint else None
    if tracing is not None:
        statements.add(tracing.statement)
    database.observe(statements)
    draining = Draining()
    guard = OperationGuard(
        schema._schema,
        settings.limits(),
        introspection=not settings.production,
        trusted=trusted,
        cache_size=settings.document_cache_size,
    )
    rate_limiter = SharedRateLimiter(
        RateLimiter(
            capacity=settings.rate_limit_capacity, refill_per_second=settings.rate_limit_refill
        ),
        database if settings.rate_limit_shared else None,
    )
    live_limits = settings.live_limits()
    # The event log, followed from the primary: what replicas have not replayed yet
    # would look like nothing happened.
    read_primary = functools.partial(database.fetch, primary=True)
    follower = LogFollower(read_primary, poll_seconds=settings.event_log_poll_seconds)
    broadcaster = Broadcaster(follower, executor, connections=live_limits.connections)
    if settings.metrics:
        broadcaster.on_delivered = metrics.EVENTS_DELIVERED.inc
    wakeups = Wakeups(read_primary, local=follower.wake)
    database.after_commit.append(wakeups.committed)
    if bus is not None:
        bus.listen(functools.partial(_wake_on_hint, follower, wakeups.origin))
    graphql = GraphQLView(
        schema,
        database=database,
        cursors=CursorCodec(secret),
        passwords=passwords,
        tokens=Tokens(secret, timedelta(hours=settings.token_ttl_hours)),
        ranking=weights,
        bus=bus,
        connection_init_timeout=timedelta(seconds=settings.ws_connection_init_timeout),
        max_page_size=settings.max_page_size,
        explorer=not settings.production,
        guard=guard,
        rate_limiter=rate_limiter,
        persisted=PersistedQueries(settings.persisted_queries_size),
        executor=executor,
        whole_queries=settings.whole_queries,
        safeguards=settings.safeguards(),
        time_budget=settings.request_time_budget,
        tracing=tracing,
        outreach=outreach,
        live_limits=live_limits,
        broadcaster=broadcaster if bus is not None else None,
    )

    pages = AccountPages(
        database, passwords, outreach, hashlib.sha256(b"forms:" + secret.encode()).digest()
    )
    # Email and webhook deliveries run where the gateway made its own database pool;
    # tests that hand in a database run deliveries themselves.
    deliveries = (
        delivery_worker(settings, database, outreach) if settings.worker and own_database else None
    )
    connection_limits = ConnectionLimits.from_proxies(
        settings.trusted_proxy_list(),
        header_timeout=settings.header_timeout,
        max_per_address=settings.max_connections_per_address,
    )
    feed_worker = FeedWorker(database, weights)
    if settings.metrics:
        executor.on_fallback = metrics.COMPILED_FALLBACKS.inc

    async def sample_pools() -> None:
        for state, count in pool_connections(database.engine, database.reads).items():
            metrics.POOL_CONNECTIONS.labels(state).set(count)

    async def keep_metrics_current() -> None:
        while True:
            try:
                await sample_pools()
                metrics.PENDING.flush()
            except Exception:
                # A failed round must not end the loop: the metrics would stop moving.
                log.exception("could not update the metrics")
            await asyncio.sleep(METRICS_UPDATE_SECONDS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        wakeups.sending = True
        pruning = asyncio.create_task(
            keep_pruning(
                database,
                max_age=timedelta(hours=settings.event_log_retention_hours),
                max_events=settings.event_log_max_events,
                every=settings.event_log_prune_seconds,
            ),
            name="event-log-pruning",
        )
        if bus is not None:
            bus.start()
            # Following from now on: a cursor handed out here can be resumed anywhere.
            broadcaster.start()
        if database.replicas is not None:
            database.replicas.start()
        feed_worker.start()
        sampler = asyncio.create_task(keep_metrics_current()) if settings.metrics else None
        if deliveries is not None:
            deliveries.start()
        restore_signals = drain_before_exit(
            graphql.live, draining, settings.effective_drain_seconds
        )
        # The server's connection protocols read their limits, and keep their counts,
        # here (gateway/connections.py): a fresh count for every server this app runs in.
        yield {CONNECTION_LIMITS: connection_limits, OPEN_CONNECTIONS: OpenConnections()}
        restore_signals()
        draining.started = True
        if deliveries is not None:
            await deliveries.stop()
        await graphql.live.drain()
        await wakeups.stop()
        pruning.cancel()
        await asyncio.gather(pruning, return_exceptions=True)
        await feed_worker.stop()
        await rate_limiter.close()
        if sampler is not None:
            sampler.cancel()
        await database.dispose()
        observer.write_lines()
        metrics.process_exited()
        if tracing is not None:
            statements.remove(tracing.statement)
            tracing.shutdown()

    routes = [
        *pages.routes(),
        Route("/healthz", healthz),
        Route("/readyz", readyz_endpoint(database, bus, draining)),
        asset_route(),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]
    if settings.metrics_on_public_port:
        routes.append(
            Route("/metrics", metrics.metrics_endpoint(settings.metrics_token, sample_pools))
        )
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(WebSocketsStraight, endpoint=graphql, counted=observer.metrics_on),
            Middleware(RequestIdMiddleware),
            Middleware(
                observe.ObserveRequests,
                observer=observer,
                draining=draining,
                replicas=database.replicas,
                tracing=tracing,
            ),
            Middleware(CompressResponses, minimum_size=COMPRESS_MINIMUM_BYTES),
            Middleware(
                RequestBodyLimits,
                max_body_bytes=settings.max_body_bytes,
                seconds=settings.body_timeout,
            ),
            Middleware(DecodeRequestBodies, max_body_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.bus = bus
    app.state.broadcaster = broadcaster
    app.state.executor = executor
    app.state.feed_worker = feed_worker
    app.state.draining = draining
    app.state.observer = observer
    app.state.rate_limiter = rate_limiter
    return app


def _wake_on_hint(follower: LogFollower, origin: str, hint: dict[str, Any] | None) -> None:
    """Another process committed events (or the LISTEN connection is back, and hints
    sent meanwhile are lost): read the log now. This process's own hints are not news."""
    if hint is None or (hint.get("type") == "log" and hint.get("from") != origin):
        follower.wake()


def _replica_set(settings: Settings, database: Database, bus: EventBus | None) -> ReplicaSet:
    assert database.reads is not None
    size, timeout = settings.db_pool_size, settings.db_connect_timeout
    statement_timeout = settings.db_statement_timeout or None
    replicas = [
        Replica(
            url,
            ReadPool(url, size=size, connect_timeout=timeout, statement_timeout=statement_timeout),
            create_engine(
                url, pool_size=size, connect_timeout=timeout, statement_timeout=statement_timeout
            ),
        )
        for url in settings.replica_urls
    ]

    def record(checked: list[Replica]) -> None:
        for replica in checked:
            metrics.REPLICA_HEALTHY.labels(replica.name).set(1 if replica.healthy else 0)
            if replica.lag is not None:
                metrics.REPLICA_LAG.labels(replica.name).set(replica.lag)

    return ReplicaSet(
        replicas,
        primary=database.reads,
        primary_engine=database.engine,
        max_lag=settings.replica_max_lag,
        bus=bus,
        on_check=record,
    )


def delivery_worker(settings: Settings, database: Database, outreach: Outreach) -> DeliveryWorker:
    """The delivery worker of `serve` and `gateway worker`, from the settings."""
    return DeliveryWorker(
        database,
        outreach=outreach,
        mailer=mailer_for(settings.smtp_url, settings.data_dir, production=settings.production),
        webhooks=WebhookClient(allow_private=settings.webhook_allow_private_addresses),
        settings=settings.delivery(),
        ranking=settings.ranking.weights(),
        listen_url=settings.database_url,
    )


def create_app_from_env() -> Starlette:
    """For uvicorn's --factory (workers, reload): settings from the environment, which
    the `gateway serve` command filled in before starting uvicorn. Runs in every
    serving process, so that is where the runtime is tuned."""
    app = create_app(Settings())
    tune_garbage_collector()
    return app
