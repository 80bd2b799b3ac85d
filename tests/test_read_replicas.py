"""Reads on a real streaming replica (pg_basebackup of a primary, tests/streaming_replica.py)
through a real gateway process: reads go to the replica and writes to the primary, a
viewer sees their own write at once while others read the replica, a replica lagging
past GATEWAY_REPLICA_MAX_LAG is skipped until it catches up, and a stopped replica sends
reads back to the primary without a failed request."""

import asyncio
import time

import asyncpg
import httpx
import pytest

from db import migrate
from db.embedded import asyncpg_dsn, ensure_database
from db.session import create_engine
from tests.conftest import TEST_SECRET
from tests.live_server import GatewayProcess
from tests.streaming_replica import StreamingPair
from tests.test_metrics import Samples
from tests.test_subscriptions import register

pytestmark = pytest.mark.slow

LIST = "{ contents(first: 50) { edges { node { title } } } }"


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory):
    pair = await asyncio.to_thread(StreamingPair)
    gateway = other = None
    try:
        await ensure_database(pair.primary_url("postgres"), "gateway")
        engine = create_engine(pair.primary_url("gateway"))
        await migrate.upgrade(engine)
        await engine.dispose()
        await asyncio.to_thread(pair.make_standby)
        await asyncio.to_thread(pair.start_standby)
        logs = tmp_path_factory.mktemp("replicas")
        gateway = GatewayProcess(
            pair.primary_url("gateway"),
            TEST_SECRET,
            logs / "gateway.log",
            DATABASE_REPLICA_URLS=pair.standby_url("gateway"),
            GATEWAY_REPLICA_MAX_LAG="60",
        )
        other = GatewayProcess(
            pair.primary_url("gateway"),
            TEST_SECRET,
            logs / "other.log",
            DATABASE_REPLICA_URLS=pair.standby_url("gateway"),
            GATEWAY_REPLICA_MAX_LAG="60",
        )
        await asyncio.to_thread(gateway.wait_ready)
        await asyncio.to_thread(other.wait_ready)
        for each in (gateway, other):
            await until(lambda each=each: replica_status(each)["healthy"], "the replica is in use")
        yield pair, gateway, other
    finally:
        for each in (gateway, other):
            if each is not None:
                each.stop()
        await asyncio.to_thread(pair.close)


def replica_status(gateway: GatewayProcess) -> dict:
    body = httpx.get(f"{gateway.url}/readyz", timeout=5).json()
    (replica,) = body["replicas"]
    return dict(replica)


async def until(check, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting until {what}")


def titles(gateway: GatewayProcess, token: str | None = None) -> set[str]:
    data = gateway.graphql(LIST, token=token)
    return {edge["node"]["title"] for edge in data["contents"]["edges"]}


def publish(gateway: GatewayProcess, token: str, title: str) -> None:
    created = gateway.graphql(
        "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
        {"i": {"title": title, "body": "body", "visibility": "PUBLIC"}},
        token,
    )["createContent"]["id"]
    gateway.graphql("mutation($id: ID!) { publishContent(id: $id) { id } }", {"id": created}, token)


async def on_standby(pair: StreamingPair, sql: str) -> object:
    conn = await asyncpg.connect(asyncpg_dsn(pair.standby_url("gateway")))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_reads_use_the_replica_and_a_viewer_reads_their_own_write(cluster) -> None:
    pair, gateway, other = cluster
    _, author = await asyncio.to_thread(register, gateway)
    await on_standby(pair, "SELECT pg_wal_replay_pause()")
    try:
        # Written to the primary, not yet replayed on the replica.
        await asyncio.to_thread(publish, gateway, author, "written while replay is paused")
        title = "written while replay is paused"
        assert title in await asyncio.to_thread(titles, gateway, author), "its author sees it"
        # The other process hears of the write over the event channel, a moment later.
        await until(lambda: title in titles(other, author), "the author sees it on either process")
        for each in (gateway, other):
            # Anonymous reads come from the replica, which has not replayed it.
            assert title not in await asyncio.to_thread(titles, each)
    finally:
        await on_standby(pair, "SELECT pg_wal_replay_resume()")
    await until(
        lambda: "written while replay is paused" in titles(gateway), "the replica replays it"
    )
    status = replica_status(gateway)
    assert status["healthy"] and status["lag_seconds"] is not None
    scraped = await asyncio.to_thread(httpx.get, f"{gateway.url}/metrics", timeout=5)
    metrics = Samples(scraped.text)
    assert metrics.get("gateway_db_replica_healthy", replica=status["replica"]) == 1
    assert ("gateway_db_replica_lag_seconds", frozenset({("replica", status["replica"])})) in (
        metrics.values
    )


async def test_a_replica_past_the_allowed_lag_is_skipped_until_it_catches_up(
    cluster, tmp_path
) -> None:
    pair, _, _ = cluster
    strict = GatewayProcess(
        pair.primary_url("gateway"),
        TEST_SECRET,
        tmp_path / "strict.log",
        DATABASE_REPLICA_URLS=pair.standby_url("gateway"),
        GATEWAY_REPLICA_MAX_LAG="1",
    )
    title = "written while the replica lags"
    try:
        await asyncio.to_thread(strict.wait_ready)
        await until(lambda: replica_status(strict)["healthy"], "the replica is in use")
        _, author = await asyncio.to_thread(register, strict)
        await on_standby(pair, "SELECT pg_wal_replay_pause()")
        try:
            await asyncio.to_thread(publish, strict, author, title)
            await until(lambda: not replica_status(strict)["healthy"], "the lag passes 1 s")
            status = replica_status(strict)
            assert status["lag_seconds"] >= 1 and status["problem"].endswith("s behind")
            # Anonymous reads, which the replica would answer without the write, come
            # from the primary.
            for _ in range(5):
                assert title in await asyncio.to_thread(titles, strict)
        finally:
            await on_standby(pair, "SELECT pg_wal_replay_resume()")
        await until(lambda: replica_status(strict)["healthy"], "the replica is back in use")
    finally:
        strict.stop()


async def test_a_stopped_replica_sends_reads_back_to_the_primary(cluster) -> None:
    pair, gateway, _ = cluster
    _, author = await asyncio.to_thread(register, gateway)
    await asyncio.to_thread(pair.stop_standby)
    # Not one read fails meanwhile, and what the primary has is seen.
    await asyncio.to_thread(publish, gateway, author, "after the replica stopped")
    for _ in range(10):
        assert "after the replica stopped" in await asyncio.to_thread(titles, gateway)
    status = replica_status(gateway)
    assert not status["healthy"] and "unreachable" in status["problem"]
    ready = await asyncio.to_thread(httpx.get, f"{gateway.url}/readyz", timeout=5)
    assert ready.status_code == 200
