"""The Python GraphQL client people use (`gql`, its WebSocket transport) against a real
`gateway serve`: a subscription whose socket drops resumes, on a new socket, with the
cursor of the last event it got, and misses nothing; over both subprotocols."""

import asyncio
import contextlib
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosed

from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess
from tests.tcp_proxy import TcpProxy
from tests.test_resumable_subscriptions import publish, register

pytestmark = pytest.mark.slow

EVENTS = (
    "subscription($after: String) { contentEvents(after: $after) { cursor content { title } } }"
)


@pytest.fixture(scope="module")
async def gateway(server_url, template_url, tmp_path_factory):
    databases = FreshDatabases(server_url)
    url = await databases.create()
    # Not a test of the time budget: a loaded machine must not fail its sign-ups.
    process = GatewayProcess(
        url,
        TEST_SECRET,
        tmp_path_factory.mktemp("gql") / "gateway.log",
        GATEWAY_REQUEST_TIME_BUDGET="20",
    )
    try:
        await asyncio.to_thread(process.wait_ready)
        yield process
    finally:
        process.stop()
        await databases.drop_all()


class Subscriber:
    """A gql client's subscription, keeping each event's title and the last cursor."""

    def __init__(self, port: int, subprotocol: str) -> None:
        self.port, self.subprotocol = port, subprotocol
        self.titles: list[str] = []
        self.cursor: str | None = None
        self.got = asyncio.Queue[str]()
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        transport = WebsocketsTransport(
            url=f"ws://127.0.0.1:{self.port}/graphql", subprotocols=[self.subprotocol]
        )
        request = GraphQLRequest(EVENTS, variable_values={"after": self.cursor})
        async with Client(transport=transport) as session:
            subscription = session.subscribe(request)
            self.subscribed.set()
            async for result in subscription:
                event: dict[str, Any] = result["contentEvents"]
                self.titles.append(event["content"]["title"])
                self.cursor = event["cursor"]
                self.got.put_nowait(event["content"]["title"])

    async def next_titles(self, count: int) -> list[str]:
        return [await asyncio.wait_for(self.got.get(), 15) for _ in range(count)]


async def _until_live(subscriber: Subscriber, gateway: GatewayProcess, author: str) -> None:
    """Publishes until one arrives: a subscription without a cursor gets what is
    published once it has started, and gql does not say when that is."""
    for n in range(10):
        latest = f"warming up {n}"
        await asyncio.to_thread(publish, gateway, author, latest)
        # Until the latest arrives: after it, nothing published before can come.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while await subscriber.got.get() != latest:
                    pass
                subscriber.titles.clear()
                return
    raise AssertionError("nothing arrived for any of ten publishes")


@pytest.mark.parametrize(
    "subprotocol",
    [WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL],
)
async def test_a_gql_subscription_resumes_after_its_socket_drops(gateway, subprotocol) -> None:
    _, author = register(gateway)
    proxy = TcpProxy(gateway.url)
    await proxy.start()
    subscriber = Subscriber(proxy.port, subprotocol)
    try:
        first = asyncio.create_task(subscriber.run())
        await subscriber.subscribed.wait()
        await _until_live(subscriber, gateway, author)
        for n in range(2):
            await asyncio.to_thread(publish, gateway, author, f"{subprotocol} {n}")
        assert await subscriber.next_titles(2) == [f"{subprotocol} {n}" for n in range(2)]

        await proxy.cut()  # the network drops the socket
        with pytest.raises((TransportError, ConnectionClosed, OSError)):
            await asyncio.wait_for(first, 15)
        for n in range(2, 5):
            await asyncio.to_thread(publish, gateway, author, f"{subprotocol} {n}")

        await proxy.restore()
        again = asyncio.create_task(subscriber.run())
        await subscriber.subscribed.wait()
        assert await subscriber.next_titles(3) == [f"{subprotocol} {n}" for n in range(2, 5)]
        await asyncio.to_thread(publish, gateway, author, f"{subprotocol} live")
        assert await subscriber.next_titles(1) == [f"{subprotocol} live"]
        assert subscriber.titles == [f"{subprotocol} {n}" for n in range(5)] + [
            f"{subprotocol} live"
        ]
        again.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await again
    finally:
        await proxy.cut()
