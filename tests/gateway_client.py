"""An HTTP client on the real ASGI app, with settings a test chooses."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from db.session import Database
from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import TEST_SECRET


@asynccontextmanager
async def gateway(
    db: Database | None, tmp_path: Path, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """`db` None: the app opens its own pool on settings["database_url"] (and closes it)."""
    options: dict[str, Any] = {
        "secret_key": TEST_SECRET,
        "data_dir": tmp_path,
        "database_url": "unused",
        **settings,
    }
    # Settings are read by their environment names (GATEWAY_...), not their field names.
    by_alias = {
        str(Settings.model_fields[name].validation_alias or name): value
        for name, value in options.items()
    }
    app = create_app(Settings(**by_alias), database=db)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            yield client
    finally:
        # What the lifespan's shutdown does, which the ASGI transport does not run.
        close = getattr(app.state.rate_limiter, "close", None)
        if close is not None:
            await close()
        if db is None:
            await app.state.database.dispose()


def graphql_app(client: httpx.AsyncClient) -> Any:
    """The app the client talks to."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app


def graphql_view(client: httpx.AsyncClient) -> Any:
    """The app's GraphQL view (its schema, guard and rate limiter), for white-box checks."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: Any = transport.app
    return next(route.endpoint for route in app.routes if getattr(route, "path", "") == "/graphql")


def error_of(response: httpx.Response) -> dict[str, Any]:
    (error,) = response.json()["errors"]
    return dict(error)
