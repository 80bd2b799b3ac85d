"""One budget per viewer however many gateway processes serve them: two real processes
on one database settle what they spend through Postgres."""

import asyncio

import httpx
import pytest

from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess
from tests.test_subscriptions import register

pytestmark = pytest.mark.slow

# cost 1 + 10 x (edges 1 + node 1 + title 1) = 31; the budget of 70 pays for two.
QUERY = {"query": "{ contents(first: 10) { edges { node { title } } } }"}
SETTINGS = {"GATEWAY_RATE_LIMIT_CAPACITY": "70", "GATEWAY_RATE_LIMIT_REFILL": "0.01"}


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
        yield a, b
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


async def test_what_one_process_spent_is_spent_on_the_other(pair) -> None:
    a, b = pair
    _, token = await asyncio.to_thread(register, a)
    assert [await status(a, token), await status(a, token)] == [200, 200]
    await asyncio.sleep(0.5)  # a few settlements
    refused = await status(b, token)
    assert refused == 429, "b let through a third query: each process had its own budget"
    _, other = await asyncio.to_thread(register, b)
    assert await status(b, other) == 200, "another viewer has a budget of their own"


async def test_alternating_between_processes_gets_one_budget(pair) -> None:
    a, b = pair
    _, token = await asyncio.to_thread(register, a)
    statuses = []
    for gateway in (a, b, a, b, a, b):
        statuses.append(await status(gateway, token))
        await asyncio.sleep(0.3)
    assert statuses.count(200) == 2, statuses
