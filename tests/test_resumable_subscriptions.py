"""Live updates that lose nothing (issue 12), with real `gateway serve` processes on one
database: events survive cut connections, a client resumes on any process with the
cursor of the last event it got, replayed events are filtered exactly as live ones, and
the log keeps only so much (CURSOR_EXPIRED past it)."""

import asyncio
import itertools
import time
from typing import Any

import asyncpg
import httpx
import pytest

from db.embedded import asyncpg_dsn
from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess, TransportWsClient

pytestmark = pytest.mark.slow

EVENTS = (
    "subscription($after: String, $tags: [String!]) { contentEvents(after: $after, tags: $tags)"
    " { cursor content { title visibility } } }"
)
NOTIFICATIONS = (
    "subscription($after: String) { notificationEvents(after: $after)"
    " { cursor notification { kind actor { handle } } } }"
)
_names = itertools.count(1)


@pytest.fixture(scope="module")
async def cluster(server_url, template_url, tmp_path_factory):
    databases = FreshDatabases(server_url)
    url = await databases.create()
    logs = tmp_path_factory.mktemp("resumable")
    # Not a test of the time budget: a loaded machine must not fail the publishes.
    a = GatewayProcess(url, TEST_SECRET, logs / "a.log", GATEWAY_REQUEST_TIME_BUDGET="20")
    b = GatewayProcess(url, TEST_SECRET, logs / "b.log", GATEWAY_REQUEST_TIME_BUDGET="20")
    try:
        await asyncio.to_thread(a.wait_ready)
        await asyncio.to_thread(b.wait_ready)
        yield a, b, url
    finally:
        a.stop()
        b.stop()
        await databases.drop_all()


def _post(gateway: GatewayProcess, query: str, variables: dict, token: str | None) -> Any:
    """The data of a request, sent again while the gateway answers 503 (its database
    connections were just cut): what a client does with SERVICE_UNAVAILABLE."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for _ in range(50):
        response = httpx.post(
            f"{gateway.url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=30,
        )
        if response.status_code != 503:
            body = response.json()
            assert "errors" not in body, body
            return body["data"]
        time.sleep(0.1)
    raise AssertionError("the gateway stayed unavailable")


def register(gateway: GatewayProcess) -> tuple[str, str]:
    handle = f"resumer_{next(_names)}"
    data = _post(
        gateway,
        "mutation($i: RegisterInput!) { register(input: $i) { token } }",
        {
            "i": {
                "handle": handle,
                "email": f"{handle}@example.com",
                "password": "long enough password",
                "displayName": handle,
            }
        },
        None,
    )
    return handle, data["register"]["token"]


def publish(
    gateway: GatewayProcess,
    token: str,
    title: str,
    *,
    visibility: str = "PUBLIC",
    tags: tuple[str, ...] = (),
) -> None:
    created = _post(
        gateway,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
        {"i": {"title": title, "body": "body", "visibility": visibility, "tags": list(tags)}},
        token,
    )["createContent"]["id"]
    # Publishing again what is published changes nothing: safe to send twice.
    _post(gateway, "mutation($id: ID!) { publishContent(id: $id) { id } }", {"id": created}, token)


async def subscribe(
    gateway: GatewayProcess,
    query: str = EVENTS,
    variables: dict | None = None,
    token: str | None = None,
) -> TransportWsClient:
    client = await TransportWsClient.open(gateway.ws_url, token)
    await client.receive_type("connection_ack")
    await client.subscribe("1", query, variables)
    await client.handled()  # joined: nothing published after this is missed
    return client


async def events(
    client: TransportWsClient, count: int, within: float = 15
) -> list[tuple[str, str]]:
    """(title, cursor) of the next `count` content events."""
    got = []
    for _ in range(count):
        message = await client.receive_type("next", within=within)
        payload = message["payload"]
        assert "errors" not in payload, payload
        event = payload["data"]["contentEvents"]
        got.append((event["content"]["title"], event["cursor"]))
    return got


async def _cut_idle_connections(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND state = 'idle'"
                " AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def test_idle_connections_cut_three_times_during_40_publishes_lose_nothing(
    cluster,
) -> None:
    a, b, url = cluster
    _, author = register(b)
    client = await subscribe(a)
    old = await subscribe(a, "subscription { contentPublished { title } }")
    titles = [f"stream {n}" for n in range(40)]
    loop = asyncio.get_running_loop()
    reached = {at: asyncio.Event() for at in (8, 20, 32)}

    def stream() -> None:
        for n, title in enumerate(titles):
            publish(b, author, title)
            if n + 1 in reached:
                loop.call_soon_threadsafe(reached[n + 1].set)
            time.sleep(0.1)  # 10 a second

    publisher = asyncio.create_task(asyncio.to_thread(stream))
    cut = 0
    for event in reached.values():
        await event.wait()
        cut += await _cut_idle_connections(url)
    await publisher
    try:
        got = await events(client, 40, within=30)
        assert [title for title, _ in got] == titles, "every event once, in order"
        await client.nothing_for(1.0)
        # contentPublished keeps working through the same log.
        live = [(await old.receive_type("next", within=30)) for _ in range(40)]
        assert [m["payload"]["data"]["contentPublished"]["title"] for m in live] == titles
    finally:
        await client.close()
        await old.close()
    assert cut >= 6, "each cut ended idle connections of both gateways"


async def test_a_client_resumes_on_another_process_with_its_last_cursor(cluster, tmp_path) -> None:
    a, b, url = cluster
    _, author = register(b)
    c = GatewayProcess(url, TEST_SECRET, tmp_path / "c.log")
    try:
        await asyncio.to_thread(c.wait_ready)
        client = await subscribe(c)
        for n in range(3):
            await asyncio.to_thread(publish, b, author, f"before {n}")
        got = await events(client, 3)
        await client.close()
    finally:
        c.stop()  # the process the client used goes away
    last_cursor = got[-1][1]
    for n in range(4):
        await asyncio.to_thread(publish, b, author, f"missed {n}")
    resumed = await subscribe(a, variables={"after": last_cursor})
    try:
        replayed = await events(resumed, 4)
        assert [title for title, _ in replayed] == [f"missed {n}" for n in range(4)]
        await asyncio.to_thread(publish, b, author, "live again")
        assert [title for title, _ in await events(resumed, 1)] == ["live again"]
        await resumed.nothing_for(0.5)
    finally:
        await resumed.close()
    # Any of the cursors resumes right after its event, on any process.
    again = await subscribe(b, variables={"after": replayed[1][1]})
    try:
        assert [t for t, _ in await events(again, 3)] == ["missed 2", "missed 3", "live again"]
    finally:
        await again.close()


async def test_replayed_events_are_filtered_exactly_as_live_ones(cluster) -> None:
    a, b, _ = cluster
    _, author = register(b)
    _, member = register(b)
    _post(
        b,
        'mutation { updatePreferences(input: {mutedTags: ["noise"]}) { mutedTags { name } } }',
        {},
        member,
    )
    viewers: dict[str, tuple[str | None, dict]] = {
        "anonymous": (None, {}),
        "member muting #noise": (member, {}),
        "only #rare": (member, {"tags": ["rare"]}),
    }
    # For each viewer: one socket stays live, one goes away after the first event.
    live, leaving = {}, {}
    for name, (token, variables) in viewers.items():
        live[name] = await subscribe(a, variables=variables, token=token)
        leaving[name] = await subscribe(b, variables=variables, token=token)
    await asyncio.to_thread(publish, b, author, "marker", tags=("rare",))
    cursors = {}
    for name in viewers:
        ((_, cursors[name]),) = await events(leaving[name], 1)
        await leaving[name].close()
        await events(live[name], 1)
    items = [
        ("for members", "MEMBERS", ("rare",)),
        ("noisy", "PUBLIC", ("noise",)),
        ("private", "PRIVATE", ()),
        ("rare and public", "PUBLIC", ("rare",)),
        ("noisy members", "MEMBERS", ("noise", "rare")),
    ]
    for title, visibility, tags in items:
        await asyncio.to_thread(publish, b, author, title, visibility=visibility, tags=tags)
    expected = {
        "anonymous": ["noisy", "rare and public"],
        "member muting #noise": ["for members", "rare and public"],
        "only #rare": ["for members", "rare and public"],
    }
    try:
        for name, (token, variables) in viewers.items():
            as_live = [t for t, _ in await events(live[name], len(expected[name]))]
            resumed = await subscribe(
                a, variables={**variables, "after": cursors[name]}, token=token
            )
            try:
                replayed = [t for t, _ in await events(resumed, len(expected[name]))]
                await resumed.nothing_for(0.5)
            finally:
                await resumed.close()
            assert as_live == expected[name], name
            assert replayed == as_live, f"{name}: replayed as live"
    finally:
        for client in live.values():
            await client.close()


async def test_notifications_resume_too_and_need_sign_in(cluster) -> None:
    a, b, _ = cluster
    star, star_token = register(b)
    fans = [register(b) for _ in range(3)]
    anonymous = await subscribe(a, NOTIFICATIONS)
    refused = await anonymous.receive_type("next")
    assert refused["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await anonymous.close()

    client = await subscribe(a, NOTIFICATIONS, token=star_token)
    follow = "mutation($h: String!) { follow(handle: $h) { id } }"
    _post(b, follow, {"h": star}, fans[0][1])
    first = (await client.receive_type("next"))["payload"]["data"]["notificationEvents"]
    assert first["notification"]["actor"]["handle"] == fans[0][0]
    await client.close()
    for _, token in fans[1:]:
        _post(b, follow, {"h": star}, token)
    resumed = await subscribe(a, NOTIFICATIONS, {"after": first["cursor"]}, token=star_token)
    try:
        got = [
            (await resumed.receive_type("next"))["payload"]["data"]["notificationEvents"]
            for _ in range(2)
        ]
        assert [g["notification"]["actor"]["handle"] for g in got] == [h for h, _ in fans[1:]]
        assert {g["notification"]["kind"] for g in got} == {"NEW_FOLLOWER"}
        await resumed.nothing_for(0.5)
    finally:
        await resumed.close()


async def test_a_forged_cursor_is_bad_user_input(cluster) -> None:
    a, _, _ = cluster
    client = await subscribe(a, variables={"after": "not-a-cursor"})
    try:
        message = await client.receive_type("next", "error")
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    finally:
        await client.close()


async def test_the_log_stays_bounded_and_older_cursors_expire(
    server_url, template_url, tmp_path
) -> None:
    databases = FreshDatabases(server_url)
    url = await databases.create()
    gateway = GatewayProcess(
        url,
        TEST_SECRET,
        tmp_path / "pruning.log",
        GATEWAY_EVENT_LOG_MAX_EVENTS="5",
        GATEWAY_EVENT_LOG_PRUNE_SECONDS="0.2",
    )
    conn = None
    try:
        await asyncio.to_thread(gateway.wait_ready)
        _, author = register(gateway)
        client = await subscribe(gateway)
        await asyncio.to_thread(publish, gateway, author, "kept for a while")
        ((_, old_cursor),) = await events(client, 1)
        for n in range(12):
            await asyncio.to_thread(publish, gateway, author, f"later {n}")
        newest = await events(client, 12)
        await client.close()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        for _ in range(100):
            if await conn.fetchval("SELECT count(*) FROM event_log") <= 5:
                break
            await asyncio.sleep(0.1)
        assert await conn.fetchval("SELECT count(*) FROM event_log") <= 5, "pruning bounds it"

        expired = await subscribe(gateway, variables={"after": old_cursor})
        try:
            message = await expired.receive_type("next")
            (error,) = message["payload"]["errors"]
            assert error["extensions"]["code"] == "CURSOR_EXPIRED"
            assert (await expired.receive_type("complete"))["id"] == "1"
        finally:
            await expired.close()
        # A cursor still within what the log keeps resumes.
        recent = await subscribe(gateway, variables={"after": newest[-3][1]})
        try:
            assert [t for t, _ in await events(recent, 2)] == ["later 10", "later 11"]
        finally:
            await recent.close()
    finally:
        if conn is not None:
            await conn.close()
        gateway.stop()
        await databases.drop_all()
