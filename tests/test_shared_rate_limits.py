"""One budget per viewer however many gateway processes serve them: two real processes
on one database settle what they spend through Postgres."""

import asyncio
import time
from datetime import timedelta

import asyncpg
import httpx
import pytest

from db.embedded import asyncpg_dsn
from gateway.auth import Tokens
from gateway.shared_rate_limits import STALE_SECONDS
from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess
from tests.test_subscriptions import register

pytestmark = pytest.mark.slow

# cost 1 + 10 x (edges 1 + node 1 + title 1) = 31; the budget of 70 pays for two.
QUERY = {"query": "{ contents(first: 10) { edges { node { title } } } }"}
COST, CAPACITY = 31, 70
SETTINGS = {"GATEWAY_RATE_LIMIT_CAPACITY": f"{CAPACITY}", "GATEWAY_RATE_LIMIT_REFILL": "0.01"}


@pytest.fixture(scope="module")
async def pair(server_url, template_url, tmp_path_factory):
    databases = FreshDatabases(server_url)
    url = await databases.create()
    logs = tmp_path_factory.mktemp("shared-limits")
    a = GatewayProcess(url, TEST_SECRET, logs / "a.log", **SETTINGS)
    b = GatewayProcess(url, TEST_SECRET, logs / "b.log", **SETTINGS)
    try:
        await asyncio.to_thread(a.wait_ready)
        await asyncio.to_thread(b.wait_ready)
        yield a, b, url
    finally:
        a.stop()
        b.stop()
        await databases.drop_all()


async def status(gateway: GatewayProcess, token: str) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.url}/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
        )
    return response.status_code


async def settled(url: str, token: str, spent: float) -> None:
    """Returns once the shared table holds `spent` of the viewer's budget, and then long
    enough that neither process charges from a view older than that: each reads the
    table again in its next round or before charging a view over STALE_SECONDS old.
    Without this, a loaded machine makes the processes' rounds late, and the bounded
    overshoot gateway/shared_rate_limits.py describes lets a third query through."""
    user_id = Tokens(TEST_SECRET, timedelta(hours=1)).claims(token)[0]
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        deadline = time.monotonic() + 10
        while True:
            tokens = await conn.fetchval(
                "SELECT tokens FROM rate_limit_buckets WHERE key = $1", f"viewer:{user_id}"
            )
            if tokens is not None and CAPACITY - tokens >= spent - 1:
                break
            assert time.monotonic() < deadline, f"the table shows {tokens} left"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    await asyncio.sleep(STALE_SECONDS + 0.2)


async def test_what_one_process_spent_is_spent_on_the_other(pair) -> None:
    a, b, url = pair
    _, token = await asyncio.to_thread(register, a)
    assert [await status(a, token), await status(a, token)] == [200, 200]
    await settled(url, token, 2 * COST)
    refused = await status(b, token)
    assert refused == 429, "b let through a third query: each process had its own budget"
    _, other = await asyncio.to_thread(register, b)
    assert await status(b, other) == 200, "another viewer has a budget of their own"


async def test_alternating_between_processes_gets_one_budget(pair) -> None:
    a, b, url = pair
    _, token = await asyncio.to_thread(register, a)
    statuses = []
    for gateway in (a, b, a, b, a, b):
        statuses.append(await status(gateway, token))
        await settled(url, token, COST * statuses.count(200))
    assert statuses.count(200) == 2, statuses
