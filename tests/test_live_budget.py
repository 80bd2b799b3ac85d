"""What live subscriptions may cost a real `gateway serve` (issue 15, finding 1): a
socket runs only so many operations, and running subscriptions hold their cost against
their connection's, their client's and the process's budget, so one client's sockets
full of heavy subscriptions leave room for everyone else."""

import asyncio
import itertools
import time

import httpx
import pytest

from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess, TransportWsClient
from tests.test_metrics import Samples

pytestmark = pytest.mark.slow

# Issue 15's document: cost 907 (gateway/limits.py).
HEAVY = (
    "subscription { contentPublished { id title author { handle viewerFollows"
    " contents(first: 100) { totalCount edges { node { id title body tags { name"
    " contentCount } } } } } } }"
)
CHEAP = "subscription { contentPublished { title } }"
SETTINGS = {
    "GATEWAY_WS_MAX_OPERATIONS": "5",
    "GATEWAY_SUBSCRIPTION_COST_PER_CONNECTION": "2000",
    "GATEWAY_SUBSCRIPTION_COST_PER_CLIENT": "3000",
    "GATEWAY_SUBSCRIPTION_COST_PER_PROCESS": "4500",
}
_names = itertools.count(1)


@pytest.fixture(scope="module")
async def server(server_url, template_url, tmp_path_factory):
    databases = FreshDatabases(server_url)
    url = await databases.create()
    gateway = GatewayProcess(
        url, TEST_SECRET, tmp_path_factory.mktemp("budget") / "gateway.log", **SETTINGS
    )
    try:
        await asyncio.to_thread(gateway.wait_ready)
        yield gateway
    finally:
        gateway.stop()
        await databases.drop_all()


async def none_running(gateway: GatewayProcess) -> None:
    """Returns once the server has ended every subscription (and given their budget
    back): the next test starts with all of it."""
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient() as http:
        while True:
            samples = Samples((await http.get(f"{gateway.url}/metrics")).text)
            running = samples.total("gateway_subscriptions")
            if running == 0:
                return
            assert time.monotonic() < deadline, f"{running} subscriptions still running"
            await asyncio.sleep(0.05)


def register(gateway: GatewayProcess) -> str:
    handle = f"budget_{next(_names)}"
    data = gateway.graphql(
        "mutation($i: RegisterInput!) { register(input: $i) { token } }",
        {
            "i": {
                "handle": handle,
                "email": f"{handle}@example.com",
                "password": "long enough password",
                "displayName": handle,
            }
        },
    )
    return str(data["register"]["token"])


def publish(gateway: GatewayProcess, token: str, title: str) -> None:
    created = gateway.graphql(
        "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
        {"i": {"title": title, "body": "body"}},
        token,
    )["createContent"]["id"]
    gateway.graphql("mutation($id: ID!) { publishContent(id: $id) { id } }", {"id": created}, token)


async def connected(gateway: GatewayProcess, token: str | None = None) -> TransportWsClient:
    client = await TransportWsClient.open(gateway.ws_url, token)
    await client.receive_type("connection_ack")
    return client


async def refused(client: TransportWsClient, op: str, query: str) -> dict | None:
    """Subscribes; the error it is refused with, or None when it runs. Nothing comes
    back for a running subscription until an event, so a ping follows it: the server
    handles a socket's messages in order, and answers the ping after deciding."""
    await client.subscribe(op, query)
    await client.send({"type": "ping"})
    message = await client.receive_type("pong", "error")
    if message["type"] == "pong":
        return None
    assert message["id"] == op, message
    await client.receive_type("pong")
    (error,) = message["payload"]
    return dict(error)


async def titles(client: TransportWsClient, count: int) -> dict[str, str]:
    got = {}
    for _ in range(count):
        message = await client.receive_type("next")
        got[message["id"]] = message["payload"]["data"]["contentPublished"]["title"]
    return got


async def test_a_socket_runs_only_so_many_operations(server) -> None:
    author = register(server)
    client = await connected(server)
    try:
        for n in range(5):
            assert await refused(client, str(n), CHEAP) is None
        error = await refused(client, "5", CHEAP)
        assert error is not None
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["limit"] == "operations per connection"
        assert error["extensions"]["maximum"] == 5
        # Completing one makes room for another.
        await client.send({"id": "0", "type": "complete"})
        await asyncio.sleep(0.2)
        assert await refused(client, "6", CHEAP) is None
        await asyncio.to_thread(publish, server, author, "to five")
        assert set(await titles(client, 5)) == {"1", "2", "3", "4", "6"}
    finally:
        await client.close()


async def test_running_subscriptions_hold_their_cost_per_connection_client_and_process(
    server,
) -> None:
    await none_running(server)  # what an earlier test ran holds none of the budget
    author = register(server)
    first, second, third = register(server), register(server), register(server)
    a, b = await connected(server, first), await connected(server, first)
    c, d = await connected(server, second), await connected(server, third)
    try:
        assert await refused(a, "a1", HEAVY) is None
        assert await refused(a, "a2", HEAVY) is None
        over_connection = await refused(a, "a3", HEAVY)
        assert over_connection is not None
        assert over_connection["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert over_connection["extensions"]["limit"] == "subscription cost per connection"
        assert over_connection["extensions"]["value"] == 3 * 907
        # A cheap one still fits the connection.
        assert await refused(a, "a4", CHEAP) is None

        assert await refused(b, "b1", HEAVY) is None
        over_client = await refused(b, "b2", HEAVY)
        assert over_client is not None
        assert over_client["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert over_client["extensions"]["limit"] == "subscription cost per client"

        assert await refused(c, "c1", HEAVY) is None
        full = await refused(c, "c2", HEAVY)
        assert full is not None
        assert full["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        # 4 x 907 + 2 held of 4,500: another heavy one does not fit anywhere.
        refusal = await refused(d, "d1", HEAVY)
        assert refusal is not None and refusal["extensions"]["code"] == "SERVICE_UNAVAILABLE"

        # A closed socket gives its subscriptions' share back.
        await a.close()
        for attempt in range(50):
            refusal = await refused(d, f"d-retry-{attempt}", HEAVY)
            if refusal is None:
                break
            assert refusal["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            await asyncio.sleep(0.1)
        assert refusal is None, "closing a socket must release what its subscriptions held"

        await asyncio.to_thread(publish, server, author, "to the admitted")
        assert set(await titles(b, 1)) == {"b1"}
        assert set(await titles(c, 1)) == {"c1"}
        assert set((await titles(d, 1)).values()) == {"to the admitted"}
    finally:
        for client in (a, b, c, d):
            await client.close()


async def test_one_address_full_of_heavy_subscriptions_leaves_room_for_others(server) -> None:
    await none_running(server)  # what an earlier test ran holds none of the budget
    author = register(server)
    reader = register(server)
    abusers = [await connected(server) for _ in range(4)]
    normal = await connected(server, reader)
    try:
        answers = []
        for n, abuser in enumerate(abusers):
            for op in range(5):
                answers.append(await refused(abuser, f"{n}-{op}", HEAVY))
        admitted = sum(1 for a in answers if a is None)
        assert admitted == 3, "one address holds what its client budget allows (3 x 907)"
        assert all(a is None or a["extensions"]["code"] == "QUERY_TOO_COMPLEX" for a in answers)

        assert await refused(normal, "mine", CHEAP) is None
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{server.url}/graphql", json={"query": "{ contents(first: 5) { totalCount } }"}
            )
        assert response.status_code == 200 and "errors" not in response.json()
        await asyncio.to_thread(publish, server, author, "for the normal reader")
        assert await titles(normal, 1) == {"mine": "for the normal reader"}
    finally:
        for client in (*abusers, normal):
            await client.close()
