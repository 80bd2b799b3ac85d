"""The ASGI application: routes, middleware and the lifetime of the database pool."""

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from db.notify import EventBus
from db.session import Database, create_engine
from gateway.auth import Passwords, Tokens
from gateway.errors import ClassifyErrors
from gateway.explorer import asset_route
from gateway.graphql_view import GraphQLView
from gateway.health import healthz, readyz_endpoint
from gateway.request_id import RequestIdMiddleware
from gateway.settings import Settings, load_or_create_secret
from gateway.shutdown import drain_before_exit
from resolvers.cursors import CursorCodec
from schema import build_schema

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, *, database: Database | None = None, bus: EventBus | None = None
) -> Starlette:
    """The gateway. `settings.database_url` must be resolved (the CLI starts an embedded
    server when none is configured); tests may hand in a `database` and `bus` of their own."""
    if bus is None and settings.database_url:
        bus = EventBus(settings.database_url)
    if database is None:
        if not settings.database_url:
            raise ValueError("create_app needs settings.database_url or a database")
        database = Database(
            create_engine(
                settings.database_url,
                pool_size=settings.db_pool_size,
                connect_timeout=settings.db_connect_timeout,
            )
        )
    secret = settings.secret_key or load_or_create_secret(settings.data_dir)
    schema = build_schema(extensions=[ClassifyErrors])
    graphql = GraphQLView(
        schema,
        database=database,
        cursors=CursorCodec(secret),
        passwords=Passwords(),
        tokens=Tokens(secret, timedelta(hours=settings.token_ttl_hours)),
        ranking=settings.ranking(),
        bus=bus,
        connection_init_timeout=timedelta(seconds=settings.ws_connection_init_timeout),
        max_page_size=settings.max_page_size,
        explorer=not settings.production,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if bus is not None:
            bus.start()
        restore_signals = drain_before_exit(graphql.live)
        yield
        restore_signals()
        await graphql.live.drain()
        await database.dispose()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz_endpoint(database, bus)),
            asset_route(),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.bus = bus
    return app


def create_app_from_env() -> Starlette:
    """For uvicorn's --factory (workers, reload): settings from the environment, which
    the `gateway serve` command filled in before starting uvicorn."""
    return create_app(Settings())
