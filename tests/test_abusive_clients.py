"""A real `gateway serve` against clients that misbehave on the wire: operations over
WebSocket pay the rate limit like HTTP, slow headers and bodies time out, one address
holds only so many connections, WebSocket messages obey the body limit, X-Forwarded-For
counts only from trusted proxies, and nothing says which server software answers."""

import asyncio
import json
import socket
import time

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from db.embedded import asyncpg_dsn
from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess, TransportWsClient

pytestmark = pytest.mark.slow

# 1 + 100 x (edges 1 + node 1 + title 1 + author 1 + handle 1) = 501
COSTLY = "{ contents(first: 100) { edges { node { title author { handle } } } } }"
SETTINGS = {
    "GATEWAY_HEADER_TIMEOUT": "1",
    "GATEWAY_BODY_TIMEOUT": "1",
    "GATEWAY_MAX_CONNECTIONS_PER_ADDRESS": "6",
    "GATEWAY_MAX_BODY_BYTES": "65536",
    "GATEWAY_RATE_LIMIT_CAPACITY": "2000",
    "GATEWAY_RATE_LIMIT_REFILL": "1",
    "GATEWAY_SIGNIN_FAILURES_PER_LOGIN": "3",
    "GATEWAY_REQUEST_TIME_BUDGET": "1",
}


@pytest.fixture(scope="module")
async def database(server_url, template_url):
    databases = FreshDatabases(server_url)
    yield await databases.create()
    await databases.drop_all()


@pytest.fixture(scope="module")
async def server(database, tmp_path_factory):
    gateway = GatewayProcess(
        database, TEST_SECRET, tmp_path_factory.mktemp("abuse") / "gateway.log", **SETTINGS
    )
    try:
        await asyncio.to_thread(gateway.wait_ready)
        yield gateway
    finally:
        gateway.stop()


def register(gateway: GatewayProcess, handle: str) -> str:
    data = gateway.graphql(
        "mutation($i: RegisterInput!) { register(input: $i) { token } }",
        {
            "i": {
                "handle": handle,
                "email": f"{handle}@example.com",
                "password": "correct horse battery",
                "displayName": handle,
            }
        },
    )
    return str(data["register"]["token"])


async def answer(client: TransportWsClient, op: str, query: str, variables=None) -> dict:
    await client.subscribe(op, query, variables)
    message = await client.receive_type("next", "error")
    if message["type"] == "next":
        await client.receive_type("complete")
    return message


async def test_websocket_operations_spend_the_same_budget_as_http(server) -> None:
    token = register(server, "ws_spender")
    client = await TransportWsClient.open(server.ws_url, token)
    await client.receive_type("connection_ack")
    answers = [await answer(client, str(n), COSTLY) for n in range(5)]
    await client.close()
    # 2,000 at once: three queries of 501 fit, the fourth does not.
    assert [a["type"] for a in answers] == ["next"] * 3 + ["error"] * 2
    (error,) = answers[3]["payload"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] >= 1
    async with httpx.AsyncClient() as http:
        over_http = await http.post(
            f"{server.url}/graphql",
            json={"query": COSTLY},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert over_http.status_code == 429, "the socket spent the viewer's budget"


# Issue 15's subscription document: cost 907 (gateway/limits.py).
HEAVY_SUBSCRIPTION = (
    "subscription { contentPublished { id title author { handle viewerFollows"
    " contents(first: 100) { totalCount edges { node { id title body tags { name"
    " contentCount } } } } } } }"
)


async def test_subscriptions_over_websocket_spend_the_same_budget(server) -> None:
    """A subscription is charged when it starts, like any operation: otherwise a client
    could open them without end once its queries are refused."""
    token = register(server, "ws_subscriber")
    client = await TransportWsClient.open(server.ws_url, token)
    await client.receive_type("connection_ack")
    for n in range(2):  # 2 x 907 of 2,000
        await client.subscribe(f"live-{n}", HEAVY_SUBSCRIPTION)
    await client.nothing_for(0.5)
    await client.subscribe("live-2", HEAVY_SUBSCRIPTION)
    refused = await client.receive_type("error")
    await client.close()
    assert refused["id"] == "live-2"
    assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
    async with httpx.AsyncClient() as http:
        over_http = await http.post(
            f"{server.url}/graphql",
            json={"query": COSTLY},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert over_http.status_code == 429, "the subscriptions spent the viewer's budget"


async def test_an_address_that_spent_its_budget_is_refused_subscriptions_too(server) -> None:
    # An address of its own: the other tests' anonymous requests come from 127.0.0.1.
    address = "127.0.0.2"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport) as http:
        for _ in range(10):
            response = await http.post(f"{server.url}/graphql", json={"query": COSTLY})
            if response.status_code == 429:
                break
    assert response.status_code == 429, "the address spent its budget over HTTP"
    client = await TransportWsClient.open(server.ws_url, local_addr=(address, 0))
    await client.receive_type("connection_ack")
    await client.subscribe("live", HEAVY_SUBSCRIPTION)
    refused = await client.receive_type("error", "next")
    await client.close()
    assert refused["type"] == "error" and refused["id"] == "live", refused
    (error,) = refused["payload"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] >= 1


async def test_sign_in_over_websocket_is_throttled_too(server) -> None:
    register(server, "ws_target")
    client = await TransportWsClient.open(server.ws_url)
    await client.receive_type("connection_ack")
    login = "mutation($i: LoginInput!) { login(input: $i) { token } }"
    codes = []
    for n in range(4):
        variables = {"i": {"login": "ws_target", "password": f"guess number {n}"}}
        message = await answer(client, str(n), login, variables)
        codes.append(message["payload"]["errors"][0]["extensions"]["code"])
    await client.close()
    assert codes == ["UNAUTHENTICATED"] * 3 + ["RATE_LIMITED"]


async def test_a_websocket_query_has_the_time_budget_and_a_subscription_does_not(
    server, database
) -> None:
    token = register(server, "ws_budget")
    client = await TransportWsClient.open(server.ws_url, token)
    await client.receive_type("connection_ack")
    await client.subscribe("live", "subscription { contentPublished { title } }")
    blocker = await asyncpg.connect(asyncpg_dsn(database))
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("LOCK TABLE contents IN ACCESS EXCLUSIVE MODE")
    try:
        started = time.monotonic()
        answered = await answer(client, "q", "{ contents(first: 1) { totalCount } }")
        elapsed = time.monotonic() - started
    finally:
        await transaction.rollback()
        await blocker.close()
    (error,) = answered["payload"]["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": "request time budget"}
    assert elapsed < 8, "answered when the 1 s budget ran out, not when the lock went"
    await asyncio.sleep(1.2)  # the subscription outlives the budget...
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        created = await http.post(
            "/graphql",
            json={
                "query": 'mutation { createContent(input: {title: "Still live", body: "b"}) { id } }'
            },
        )
        content_id = created.json()["data"]["createContent"]["id"]
        await http.post(
            "/graphql",
            json={
                "query": "mutation($id: ID!) { publishContent(id: $id) { id } }",
                "variables": {"id": content_id},
            },
        )
    delivered = await client.receive_type("next")
    await client.close()
    assert delivered["id"] == "live"  # ...and still delivers
    assert delivered["payload"]["data"]["contentPublished"]["title"] == "Still live"


def _read_all(sock: socket.socket, within: float) -> bytes:
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def _trickle_headers(port: int) -> tuple[float, bytes]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(20):  # a header line every 0.3 s, for 6 s
                time.sleep(0.3)
                sock.sendall(b"X-Slow: yes\r\n")
        except OSError:
            pass  # closed on us
        return time.monotonic() - started, _read_all(sock, 1)


async def test_headers_that_arrive_too_slowly_are_timed_out(server) -> None:
    elapsed, received = await asyncio.to_thread(_trickle_headers, server.port)
    assert received.startswith(b"HTTP/1.1 408 ")
    # Its timeout is 1 s; the trickle alone lasts 6 s. The rest is room for a slow machine.
    assert elapsed < 5


def _idle(port: int) -> tuple[float, bytes]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        received = _read_all(sock, 5)
    return time.monotonic() - started, received


async def test_a_connection_that_sends_nothing_is_timed_out(server) -> None:
    elapsed, received = await asyncio.to_thread(_idle, server.port)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert elapsed < 4.5, "closed at its 1 s timeout, before the client gave up (5 s)"


def _half_a_body(port: int) -> tuple[float, bytes]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 60000\r\n\r\n" + b'{"query": "' + b" " * 30_000
        )
        received = _read_all(sock, 5)
    return time.monotonic() - started, received


async def test_a_body_that_arrives_too_slowly_is_timed_out(server) -> None:
    elapsed, received = await asyncio.to_thread(_half_a_body, server.port)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in head.lower()
    assert "did not arrive within 1 s" in json.loads(body)["errors"][0]["message"]
    assert elapsed < 4.5, "closed at its 1 s timeout, before the client gave up (5 s)"


async def test_one_address_holds_only_so_many_connections(server) -> None:
    sockets = []
    for _ in range(3):
        client = await TransportWsClient.open(server.ws_url)
        await client.receive_type("connection_ack")
        sockets.append(client)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        refused = await asyncio.to_thread(_idle, server.port)
        assert refused[1].startswith(b"HTTP/1.1 503 "), "WebSockets and idle sockets count"
        assert b"at most 6" in refused[1]
    finally:
        for sock in idle:
            sock.close()
        for client in sockets:
            await client.close()
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient() as http:
        healthy = await http.get(f"{server.url}/healthz")
    assert healthy.status_code == 200, "places are given back"


async def test_a_websocket_message_over_the_body_limit_closes_the_socket(server) -> None:
    async with connect(server.ws_url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": "{ viewer { id } }", "variables": {"padding": "x" * 70_000}}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_responses_do_not_name_the_server_software(server) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.url}/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert "server" not in response.headers


def _spend_anonymously(gateway: GatewayProcess, requests: int) -> list[int]:
    return [
        httpx.post(
            f"{gateway.url}/graphql",
            json={"query": COSTLY},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(requests)
    ]


async def test_a_client_cannot_pose_as_other_addresses_with_x_forwarded_for(server) -> None:
    statuses = await asyncio.to_thread(_spend_anonymously, server, 5)
    assert statuses == [200, 200, 200, 429, 429]


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(database, tmp_path) -> None:
    proxied = GatewayProcess(
        database,
        TEST_SECRET,
        tmp_path / "proxied.log",
        **SETTINGS,
        GATEWAY_TRUSTED_PROXIES="127.0.0.1",
    )
    try:
        await asyncio.to_thread(proxied.wait_ready)
        statuses = await asyncio.to_thread(_spend_anonymously, proxied, 5)
    finally:
        proxied.stop()
    assert statuses == [200] * 5, "each forwarded address has its own budget"


def test_trusted_proxies_are_not_counted_as_one_client() -> None:
    from gateway.connections import ConnectionLimits

    limits = ConnectionLimits.from_proxies(
        ["10.0.0.0/8", "::1"], header_timeout=10, max_per_address=100
    )
    assert not limits.counts("10.1.2.3") and not limits.counts("::1")
    assert limits.counts("192.0.2.7") and limits.counts("not an address")
    everyone = ConnectionLimits.from_proxies(["*"], header_timeout=10, max_per_address=100)
    assert not everyone.counts("192.0.2.7")


def test_a_trusted_proxy_that_is_not_an_address_stops_the_gateway_from_starting() -> None:
    from pydantic import ValidationError

    from gateway.settings import Settings

    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(GATEWAY_TRUSTED_PROXIES="10.0.0.1, proxy.example")
    assert Settings(GATEWAY_TRUSTED_PROXIES="10.0.0.1, 10.2.0.0/16").trusted_proxy_list() == [
        "10.0.0.1",
        "10.2.0.0/16",
    ]
