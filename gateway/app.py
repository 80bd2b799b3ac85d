"""The ASGI application: routes, middleware and the lifetime of the database pool."""

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from db.notify import EventBus
from db.read_pool import ReadPool
from db.session import Database, create_engine
from gateway.account_pages import AccountPages
from gateway.auth import Passwords, Tokens
from gateway.compression import CompressResponses
from gateway.errors import ClassifyErrors
from gateway.explorer import asset_route
from gateway.graphql_view import GraphQLView
from gateway.health import healthz, readyz_endpoint
from gateway.mailer import mailer_for
from gateway.operation_guard import GuardOperations, OperationGuard
from gateway.persisted_queries import PersistedQueries, TrustedDocuments
from gateway.rate_limits import RateLimiter
from gateway.request_id import RequestIdMiddleware
from gateway.request_size import RequestSizeLimit
from gateway.runtime import tune_garbage_collector
from gateway.settings import Settings, load_or_create_secret
from gateway.shutdown import drain_before_exit
from gateway.webhook_client import WebhookClient
from gateway.worker import DeliveryWorker
from resolvers.cursors import CursorCodec
from resolvers.outreach import Outreach
from schema import build_schema
from schema.compiled_reads import CompiledReads, reader_for

log = logging.getLogger(__name__)

# Smaller responses gain less from compression than it costs to compress them.
COMPRESS_MINIMUM_BYTES = 1_000


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
    if settings.compiled_reads:
        extensions.append(CompiledReads)
    schema = build_schema(extensions=extensions)
    guard = OperationGuard(
        schema._schema,
        settings.limits(),
        introspection=not settings.production,
        trusted=trusted,
        cache_size=settings.document_cache_size,
    )
    graphql = GraphQLView(
        schema,
        database=database,
        cursors=CursorCodec(secret),
        passwords=passwords,
        tokens=Tokens(secret, timedelta(hours=settings.token_ttl_hours)),
        ranking=settings.ranking(),
        bus=bus,
        connection_init_timeout=timedelta(seconds=settings.ws_connection_init_timeout),
        max_page_size=settings.max_page_size,
        explorer=not settings.production,
        guard=guard,
        rate_limiter=RateLimiter(
            capacity=settings.rate_limit_capacity, refill_per_second=settings.rate_limit_refill
        ),
        persisted=PersistedQueries(settings.persisted_queries_size),
        compiled=reader_for(schema) if settings.compiled_reads else None,
        outreach=outreach,
    )

    pages = AccountPages(
        database, passwords, outreach, hashlib.sha256(b"forms:" + secret.encode()).digest()
    )
    # The worker runs where the gateway made its own database pool; tests that hand in
    # a database run deliveries themselves.
    worker = (
        delivery_worker(settings, database, outreach) if settings.worker and own_database else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if bus is not None:
            bus.start()
        if worker is not None:
            worker.start()
        restore_signals = drain_before_exit(graphql.live)
        yield
        restore_signals()
        if worker is not None:
            await worker.stop()
        await graphql.live.drain()
        await database.dispose()

    app = Starlette(
        routes=[
            *pages.routes(),
            Route("/healthz", healthz),
            Route("/readyz", readyz_endpoint(database, bus)),
            asset_route(),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(CompressResponses, minimum_size=COMPRESS_MINIMUM_BYTES),
            Middleware(RequestSizeLimit, max_body_bytes=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.bus = bus
    return app


def delivery_worker(settings: Settings, database: Database, outreach: Outreach) -> DeliveryWorker:
    """The delivery worker of `serve` and `gateway worker`, from the settings."""
    return DeliveryWorker(
        database,
        outreach=outreach,
        mailer=mailer_for(settings.smtp_url, settings.data_dir, production=settings.production),
        webhooks=WebhookClient(allow_private=settings.webhook_allow_private_addresses),
        settings=settings.delivery(),
        ranking=settings.ranking(),
        listen_url=settings.database_url,
    )


def create_app_from_env() -> Starlette:
    """For uvicorn's --factory (workers, reload): settings from the environment, which
    the `gateway serve` command filled in before starting uvicorn. Runs in every
    serving process, so that is where the runtime is tuned."""
    app = create_app(Settings())
    tune_garbage_collector()
    return app
