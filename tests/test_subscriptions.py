"""Live updates with real gateway processes: a subscriber on one process hears what is
published through another, filtered for its viewer; the protocols' rules hold."""

import asyncio
import contextlib
import itertools
import signal
import time

import asyncpg
import httpx
import pytest

from db.embedded import asyncpg_dsn
from db.notify import APPLICATION_NAME
from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess, TransportWsClient

pytestmark = pytest.mark.slow

PUBLISHED = "subscription($tags: [String!]) { contentPublished(tags: $tags) { title visibility tags { name } viewerHasReacted author { handle } } }"
_names = itertools.count(1)


@pytest.fixture(scope="module")
async def cluster(server_url, template_url, tmp_path_factory):
    databases = FreshDatabases(server_url)
    url = await databases.create()
    logs = tmp_path_factory.mktemp("gateways")
    a = GatewayProcess(url, TEST_SECRET, logs / "a.log", GATEWAY_WS_CONNECTION_INIT_TIMEOUT="1")
    b = GatewayProcess(url, TEST_SECRET, logs / "b.log")
    try:
        await asyncio.to_thread(a.wait_ready)
        await asyncio.to_thread(b.wait_ready)
        yield a, b, url
    finally:
        a.stop()
        b.stop()
        await databases.drop_all()


def register(gateway: GatewayProcess, handle: str | None = None) -> tuple[str, str]:
    handle = handle or f"person_{next(_names)}"
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
    return handle, data["register"]["token"]


def publish(
    gateway: GatewayProcess,
    token: str,
    title: str,
    *,
    visibility: str = "PUBLIC",
    tags: tuple[str, ...] = (),
) -> str:
    created = gateway.graphql(
        "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
        {"i": {"title": title, "body": "body", "visibility": visibility, "tags": list(tags)}},
        token,
    )["createContent"]["id"]
    gateway.graphql("mutation($id: ID!) { publishContent(id: $id) { id } }", {"id": created}, token)
    return created


async def subscribed(
    gateway: GatewayProcess, query: str, variables=None, token=None, op="1"
) -> TransportWsClient:
    client = await TransportWsClient.open(gateway.ws_url, token)
    assert (await client.receive_type("connection_ack"))["type"] == "connection_ack"
    await client.subscribe(op, query, variables)
    # Joined the live events once handled: nothing published after this is missed.
    await client.handled()
    return client


async def test_a_subscriber_on_one_process_hears_a_publish_through_another(cluster) -> None:
    a, b, _ = cluster
    _, author = register(b)
    reader_handle, reader = register(b)
    client = await subscribed(a, PUBLISHED, token=reader)
    try:
        await asyncio.to_thread(publish, b, author, "hello from b", tags=("news",))
        message = await client.receive_type("next")
        assert message["id"] == "1"
        node = message["payload"]["data"]["contentPublished"]
        assert node["title"] == "hello from b" and node["tags"] == [{"name": "news"}]
        assert node["viewerHasReacted"] is False
    finally:
        await client.close()
    assert reader_handle


async def test_events_are_filtered_for_each_viewer(cluster) -> None:
    a, b, _ = cluster
    _, author = register(b)
    _, member = register(b)
    _, muting = register(b)
    b.graphql(
        'mutation { updatePreferences(input: {mutedTags: ["noise"]}) { mutedTags { name } } }',
        token=muting,
    )
    anonymous_client = await subscribed(a, PUBLISHED)
    member_client = await subscribed(a, PUBLISHED, token=member)
    muting_client = await subscribed(a, PUBLISHED, token=muting)
    tagged_client = await subscribed(a, PUBLISHED, {"tags": ["#Rare"]}, token=member)
    try:
        await asyncio.to_thread(
            publish, b, author, "for members", visibility="MEMBERS", tags=("noise",)
        )
        await asyncio.to_thread(publish, b, author, "private", visibility="PRIVATE")
        await asyncio.to_thread(publish, b, author, "rare and public", tags=("rare",))
        member_titles = [
            (await member_client.receive_type("next"))["payload"]["data"]["contentPublished"][
                "title"
            ]
            for _ in range(2)
        ]
        assert member_titles == ["for members", "rare and public"]
        anon = await anonymous_client.receive_type("next")
        assert anon["payload"]["data"]["contentPublished"]["title"] == "rare and public"
        muted = await muting_client.receive_type("next")
        assert muted["payload"]["data"]["contentPublished"]["title"] == "rare and public"
        tagged = await tagged_client.receive_type("next")
        assert tagged["payload"]["data"]["contentPublished"]["title"] == "rare and public"
        for client in (member_client, anonymous_client, muting_client, tagged_client):
            await client.nothing_for(0.5)
    finally:
        for client in (anonymous_client, member_client, muting_client, tagged_client):
            await client.close()


async def test_notifications_need_sign_in_per_operation_and_arrive_live(cluster) -> None:
    a, b, _ = cluster
    star, star_token = register(b)
    _, fan = register(b)
    anonymous = await TransportWsClient.open(a.ws_url)
    await anonymous.receive_type("connection_ack")
    await anonymous.subscribe("1", "subscription { notifications { kind } }")
    try:
        refused = await anonymous.receive_type("next")
        assert refused["payload"]["data"] is None
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await anonymous.receive_type("complete"))["id"] == "1"
        # The socket stays usable for what anonymous viewers may do.
        await anonymous.subscribe("2", PUBLISHED)
        await anonymous.nothing_for(0.2)
    finally:
        await anonymous.close()
    client = await subscribed(
        a, "subscription { notifications { kind read actor { handle } } }", token=star_token
    )
    try:
        fan_handle = b.graphql(f'mutation {{ follow(handle: "{star}") {{ handle }} }}', token=fan)
        assert fan_handle
        message = await client.receive_type("next")
        assert message["payload"]["data"]["notifications"]["kind"] == "NEW_FOLLOWER"
        assert message["payload"]["data"]["notifications"]["read"] is False
    finally:
        await client.close()


async def test_a_bad_token_is_refused_at_init(cluster) -> None:
    a, _, _ = cluster
    client = await TransportWsClient.open(a.ws_url, "not-a-token")
    with pytest.raises(Exception) as closed:
        await client.receive(within=5)
    assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 4403


async def test_logout_ends_the_viewers_subscriptions(cluster) -> None:
    a, b, _ = cluster
    _, token = register(b)
    client = await subscribed(a, PUBLISHED, token=token)
    try:
        b.graphql("mutation { logout }", token=token)
        ended = await client.receive_type("next")
        assert ended["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "revoked" in ended["payload"]["errors"][0]["message"]
        assert (await client.receive_type("complete"))["id"] == "1"
    finally:
        await client.close()


async def _close_code(client: TransportWsClient) -> int:
    while True:
        try:
            message = await client.receive(within=5)
        except Exception as closed:
            return int(closed.rcvd.code)  # type: ignore[attr-defined]
        assert message["type"] in ("ping", "connection_ack", "next", "pong", "ka"), message


async def test_protocol_violations_get_their_close_codes(cluster) -> None:
    a, _, _ = cluster
    duplicate_init = await TransportWsClient.open(a.ws_url)
    await duplicate_init.send({"type": "connection_init"})
    assert await _close_code(duplicate_init) == 4429

    socket = await _raw(a)
    early_client = TransportWsClient(socket)
    await early_client.subscribe("1", PUBLISHED)
    assert await _close_code(early_client) == 4401

    duplicate_id = await subscribed(a, PUBLISHED)
    await duplicate_id.subscribe("1", PUBLISHED)
    assert await _close_code(duplicate_id) == 4409

    malformed = await TransportWsClient.open(a.ws_url)
    await malformed.receive_type("connection_ack")
    await malformed.socket.send("{not json")
    assert await _close_code(malformed) == 4400

    silent = TransportWsClient(await _raw(a))
    started = time.monotonic()
    assert await _close_code(silent) == 4408, "connection_init must come in time"
    assert time.monotonic() - started < 4.5, "closed at its timeout, not when the client gave up"


async def _raw(gateway: GatewayProcess):
    from websockets.asyncio.client import connect

    return await connect(gateway.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]


async def test_the_older_graphql_ws_protocol_works_too(cluster) -> None:
    a, b, _ = cluster
    _, author = register(b)
    client = await TransportWsClient.open(a.ws_url, protocol="graphql-ws")
    try:
        assert (await client.receive_type("connection_ack"))["type"] == "connection_ack"
        await client.send({"id": "7", "type": "start", "payload": {"query": PUBLISHED}})
        # This protocol has no ping to learn when the subscription has started (it starts
        # in a task of its own): publish until one arrives; what was published before it
        # started is, rightly, not sent.
        published: list[str] = []
        message = None
        while message is None and len(published) < 10:
            published.append(f"legacy hello {len(published)}")
            await asyncio.to_thread(publish, b, author, published[-1])
            with contextlib.suppress(TimeoutError):
                message = await client.receive_type("data", "ka", within=2)
                while message["type"] == "ka":  # keep-alive
                    message = await client.receive_type("data", "ka", within=2)
        assert message is not None, "nothing arrived for any of ten publishes"
        assert message["id"] == "7"
        assert message["payload"]["data"]["contentPublished"]["title"] in published
    finally:
        await client.close()


async def test_events_flow_again_after_the_listen_connection_is_killed(cluster) -> None:
    a, b, url = cluster
    _, author = register(b)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = $1",
            APPLICATION_NAME,
        )
    finally:
        await conn.close()
    assert killed >= 2, "each gateway process holds one LISTEN connection"
    await asyncio.to_thread(a.wait_ready, 30)
    client = await subscribed(a, PUBLISHED)
    try:
        await asyncio.to_thread(publish, b, author, "after the outage")
        message = await client.receive_type("next")
        assert message["payload"]["data"]["contentPublished"]["title"] == "after the outage"
    finally:
        await client.close()
    ready = await asyncio.to_thread(httpx.get, f"{b.url}/readyz")
    assert ready.json()["events"] == "listening"


async def test_shutdown_completes_subscriptions_and_closes_with_1001(cluster, tmp_path) -> None:
    _, b, url = cluster
    _, author = register(b)
    c = GatewayProcess(url, TEST_SECRET, tmp_path / "c.log")
    try:
        await asyncio.to_thread(c.wait_ready)
        client = await subscribed(c, PUBLISHED)
        await asyncio.to_thread(publish, b, author, "before shutdown")
        assert (await client.receive_type("next"))["type"] == "next"
        c.process.send_signal(signal.SIGTERM)
        assert (await client.receive_type("complete"))["id"] == "1"
        assert await _close_code(client) == 1001
        # uvicorn raises the signal again once it has shut down cleanly; `serve` then
        # leaves through Python (so atexit runs) with the shell's status for SIGTERM.
        assert await asyncio.to_thread(c.process.wait, 20) == 128 + signal.SIGTERM
        assert "Application shutdown complete" in c.log_path.read_text()
    finally:
        c.stop()


async def test_an_expiring_token_ends_its_subscriptions(cluster) -> None:
    from datetime import timedelta

    from gateway.auth import Tokens

    a, b, _ = cluster
    handle, token = register(b)
    me = b.graphql("{ viewer { id } }", token=token)["viewer"]["id"]
    from resolvers.ids import decode_id

    _, user_id = decode_id(me)
    short = Tokens(TEST_SECRET, timedelta(seconds=2)).issue(user_id, 0).token
    client = await subscribed(a, PUBLISHED, token=short)
    try:
        ended = await client.receive_type("next", within=6)
        assert ended["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "expired" in ended["payload"]["errors"][0]["message"]
        assert (await client.receive_type("complete"))["id"] == "1"
    finally:
        await client.close()
    assert handle


async def test_a_socket_opened_with_a_revoked_token_cannot_start_operations(cluster) -> None:
    a, b, _ = cluster
    _, token = register(b)
    client = await TransportWsClient.open(a.ws_url, token)
    await client.receive_type("connection_ack")
    b.graphql("mutation { logout }", token=token)
    await client.subscribe("1", "{ viewer { handle } }")
    assert await _close_code(client) == 4403


async def test_graphql_ws_refuses_a_second_connection_init(cluster) -> None:
    a, b, _ = cluster
    _, token = register(b)
    client = await TransportWsClient.open(a.ws_url, token, protocol="graphql-ws")
    await client.receive_type("connection_ack")
    await client.send({"type": "connection_init", "payload": {}})
    assert await _close_code(client) == 4429


async def test_init_while_the_database_is_down_says_try_again_later(
    fresh_database_url, tmp_path
) -> None:
    # 4403 would tell the client its token is bad, and clients do not retry that.
    from datetime import timedelta

    from gateway.auth import Tokens
    from tests.tcp_proxy import TcpProxy

    proxy = TcpProxy(fresh_database_url)
    await proxy.start()
    gateway = GatewayProcess(
        proxy.url(fresh_database_url),
        TEST_SECRET,
        tmp_path / "gateway.log",
        GATEWAY_DB_CONNECT_TIMEOUT="1",
    )
    try:
        await asyncio.to_thread(gateway.wait_ready)
        await proxy.cut()
        token = Tokens(TEST_SECRET, timedelta(hours=1)).issue(1, 0).token
        client = await TransportWsClient.open(gateway.ws_url, token)
        with pytest.raises(Exception) as closed:
            await client.receive(within=15)
        assert getattr(closed.value, "rcvd", None) is not None
        assert closed.value.rcvd.code == 1013
        assert "retry" in closed.value.rcvd.reason
    finally:
        gateway.stop()
        await proxy.cut()


async def test_each_operation_gets_its_own_frames_and_complete_stops_only_it(cluster) -> None:
    a, b, _ = cluster
    _, author = register(b)
    client = await subscribed(a, PUBLISHED, op="first")
    await client.subscribe("second", "subscription { contentPublished { title } }")
    await client.handled()
    try:
        await asyncio.to_thread(publish, b, author, "to both")
        got = {}
        for _ in range(2):
            message = await client.receive_type("next")
            got[message["id"]] = message["payload"]["data"]["contentPublished"]["title"]
        assert got == {"first": "to both", "second": "to both"}
        await client.send({"id": "first", "type": "complete"})
        await client.handled()
        await asyncio.to_thread(publish, b, author, "to the second")
        message = await client.receive_type("next")
        assert message["id"] == "second"
        assert message["payload"]["data"]["contentPublished"]["title"] == "to the second"
        await client.nothing_for(0.5)
    finally:
        await client.close()


async def test_a_personal_document_is_answered_for_its_own_viewer(cluster) -> None:
    a, b, _ = cluster
    author_handle, author = register(b)
    _, reader = register(b)
    query = "subscription { contentPublished { title author { handle email } } }"
    own = await subscribed(a, query, token=author)
    other = await subscribed(a, query, token=reader)
    try:
        await asyncio.to_thread(publish, b, author, "whose email")
        mine = (await own.receive_type("next"))["payload"]["data"]["contentPublished"]
        theirs = (await other.receive_type("next"))["payload"]["data"]["contentPublished"]
        assert mine["author"] == {"handle": author_handle, "email": f"{author_handle}@example.com"}
        assert theirs["author"] == {"handle": author_handle, "email": None}
    finally:
        await own.close()
        await other.close()


async def test_a_publication_reaches_followers_first_pages_through_the_workers(cluster) -> None:
    """Fan-out runs in the serving processes' feed workers, after the publish commits."""
    a, b, _ = cluster
    author_handle, author = register(b)
    _, reader = register(a)
    a.graphql("mutation($h: String!) { follow(handle: $h) { id } }", {"h": author_handle}, reader)
    feed = "{ feed(first: 5) { edges { score reasons node { id title } } } }"
    a.graphql(feed, None, reader)  # the reader's feed is built on their first visit
    created = await asyncio.to_thread(publish, b, author, "hot off the press")
    deadline = time.monotonic() + 10
    while True:
        edges = a.graphql(feed, None, reader)["feed"]["edges"]
        if edges and edges[0]["node"]["id"] == created and edges[0]["score"] > 1.5:
            break
        assert time.monotonic() < deadline, edges
        await asyncio.sleep(0.1)
    assert edges[0]["reasons"][0] == f"you follow @{author_handle}"
