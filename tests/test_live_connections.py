"""GATEWAY_LIVE_DB_CONNECTIONS as a gateway built from settings applies it, over real
WebSockets: an event's statements hold at most that many connections at once, and a
document open on many sockets is executed once per event and audience."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from db.session import Database, StatementCounter, create_engine
from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import TEST_SECRET
from tests.factories import make_user
from tests.gateway_client import graphql_view
from tests.live_server import TransportWsClient, free_port
from tests.test_live_path import HEAVY, _published, _until, _work

# Heavy documents that differ: each is a group of its own, so one event has this many
# statements that could run at once.
VARIANTS = [HEAVY.replace("id title author", f"id {field} author") for field in
            ("summary", "language", "status")]  # fmt: skip


@contextlib.asynccontextmanager
async def serving(url: str, tmp_path, **settings: str) -> AsyncIterator[Any]:
    """create_app on settings, served by uvicorn in this process (so its database can be
    watched); yields the app."""
    app = create_app(
        Settings(
            DATABASE_URL=url,
            GATEWAY_SECRET_KEY=TEST_SECRET,
            GATEWAY_DATA_DIR=str(tmp_path),
            GATEWAY_RATE_LIMIT_SHARED="false",
            GATEWAY_EVENT_LOG_POLL_SECONDS="0.05",
            **settings,
        )
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                    if ready.json().get("events") == "listening":
                        break
                await asyncio.sleep(0.05)
        app.state.ws_url = f"ws://127.0.0.1:{port}/graphql"
        yield app
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize(("setting", "most"), [("1", 1), (None, 2)], ids=["one", "default"])
async def test_live_work_holds_the_connections_the_setting_allows(
    fresh_database_url, tmp_path, setting, most
) -> None:
    writer = Database(create_engine(fresh_database_url))
    author = await make_user(writer)
    settings = {"GATEWAY_LIVE_DB_CONNECTIONS": setting} if setting else {}
    async with serving(fresh_database_url, tmp_path, **settings) as app:
        database = graphql_view(_Client(app)).database
        # Its upkeep of the stored feeds after a publish is not live work, and would land
        # in the event's counts whenever it ran.
        await app.state.feed_worker.stop()
        in_flight, peak = 0, 0
        fetch = database.fetch

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.05)  # long enough for the others to start meanwhile
                return await fetch(*args, **kwargs)
            finally:
                in_flight -= 1

        database.fetch = counted
        sockets: list[TransportWsClient] = []
        counts = []
        for socket_count in (1, 4):
            while len(sockets) < socket_count:
                client = await TransportWsClient.open(app.state.ws_url)
                await client.receive_type("connection_ack")
                for n, query in enumerate([HEAVY, HEAVY, HEAVY, *VARIANTS]):
                    await client.subscribe(f"op-{n}", query)
                await client.handled()
                sockets.append(client)
            peak = 0
            with StatementCounter(database) as counter:
                await _published(writer, author, f"to {socket_count} sockets")
                for client in sockets:
                    for _ in range(3 + len(VARIANTS)):
                        message = await client.receive_type("next")
                        assert "errors" not in message["payload"], message
                await _until(lambda: in_flight == 0)
            counts.append(_work(counter))
            assert peak == most, f"{peak} connections at once"
        for client in sockets:
            await client.close()
    await writer.engine.dispose()
    # The audience, then one statement per document: for 6 subscriptions or 24.
    assert counts[0] == counts[1] == 2 + len(VARIANTS), counts


class _Client:
    """What graphql_view needs of a client: an ASGI transport on the app."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app)
