"""A production `gateway serve --workers 2` as an operator runs it: /metrics adds up
both workers (multiprocess mode) and moves with queries, errors, subscriptions and
rate-limit refusals; every log line is JSON, one per request, and holds no secret."""

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess, TransportWsClient, free_port
from tests.test_metrics import SERIES, Samples

pytestmark = pytest.mark.slow

TOKEN = "metrics-token-for-the-test"
PASSWORD = "a secret nobody may log"
QUERY = "query Listing { contents(first: 2) { edges { node { title } } } }"
# cost 1 + 100 x 3 = 301: the 1,000 budget pays for three.
EXPENSIVE = "query Big { contents(first: 100) { edges { node { title } } } }"
REQUEST_FIELDS = {
    "time", "level", "request_id", "pid", "method", "path", "status", "operation_type",
    "operation_name", "viewer_id", "duration_ms", "sql_statements", "sql_ms", "outcome",
    "error_codes",
}  # fmt: skip


@pytest.fixture(scope="module")
async def production(server_url, template_url, tmp_path_factory):
    databases = FreshDatabases(server_url)
    url = await databases.create()
    logs = tmp_path_factory.mktemp("production")
    server = GatewayProcess(
        url,
        TEST_SECRET,
        logs / "serve.log",
        serve_args=("--workers", "2"),
        GATEWAY_ENV="production",
        GATEWAY_METRICS_TOKEN=TOKEN,
        GATEWAY_RATE_LIMIT_CAPACITY="1000",
        GATEWAY_RATE_LIMIT_REFILL="0.001",
        GATEWAY_DRAIN_SECONDS="0",
    )
    try:
        await asyncio.to_thread(server.wait_ready)
        yield server
    finally:
        server.stop()
        await databases.drop_all()


async def scrape(server: GatewayProcess) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 200, response.text
    return Samples(response.text)


async def scrape_until(
    server: GatewayProcess, moved: Callable[[Samples], bool], within: float = 5
) -> Samples:
    """/metrics once `moved` holds of it (or after `within` seconds, for the test to say
    what is wrong): a worker writes its requests' samples once a second
    (gateway/metric_batches.py), so the other worker's show up to a second late."""
    deadline = time.monotonic() + within
    while True:
        samples = await scrape(server)
        if moved(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.1)


async def post(server: GatewayProcess, body: dict, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # A connection per request, so the two workers share the requests.
    async with httpx.AsyncClient() as client:
        return await client.post(f"{server.url}/graphql", json=body, headers=headers, timeout=30)


def request_lines(server: GatewayProcess) -> list[dict]:
    text = server.log_path.read_text()
    # A worker may be writing its buffer as this reads: its last line comes whole later.
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line that is not JSON: {line!r}")
    return [line for line in parsed if line.get("logger") == "gateway.request"]


async def register(server: GatewayProcess, handle: str) -> str:
    mutation = """mutation($i: RegisterInput!) { register(input: $i) { token } }"""
    variables = {
        "i": {
            "handle": handle,
            "email": f"{handle}@example.com",
            "password": PASSWORD,
            "displayName": handle,
        }
    }
    body = (await post(server, {"query": mutation, "variables": variables})).json()
    return str(body["data"]["register"]["token"])


async def test_metrics_add_up_both_workers(production) -> None:
    before = await scrape(production)
    labels = {"operation_type": "query", "operation_name": "Listing", "outcome": "ok"}
    # Batches of concurrent requests on new connections until both workers have served
    # some: which worker accepts a connection is the kernel's choice.
    sent = 0
    for _ in range(30):
        responses = await asyncio.gather(*(post(production, {"query": QUERY}) for _ in range(10)))
        assert all(r.status_code == 200 and "errors" not in r.json() for r in responses)
        sent += len(responses)
        await asyncio.sleep(0.1)
        if len({line["pid"] for line in request_lines(production)}) == 2:
            break
    served_by = {line["pid"] for line in request_lines(production)}
    assert len(served_by) == 2, "both workers served some of the requests"
    bad = await post(production, {"query": "{ nope }"})
    assert bad.status_code == 200

    def moved(samples: Samples) -> int:
        return int(
            samples.get("graphql_requests_total", **labels)
            - before.get("graphql_requests_total", **labels)
        )

    def errors(samples: Samples) -> int:
        return int(
            samples.get("graphql_errors_total", code="BAD_USER_INPUT")
            - before.get("graphql_errors_total", code="BAD_USER_INPUT")
        )

    after = await scrape_until(production, lambda s: moved(s) >= sent and errors(s) >= 1)
    assert moved(after) == sent
    assert errors(after) == 1
    # Not counted twice: a second later the counts have not moved on.
    await asyncio.sleep(1.2)
    again = await scrape(production)
    assert (moved(again), errors(again)) == (sent, 1)


async def test_subscriptions_and_deliveries_are_counted(production) -> None:
    author = await register(production, "metrics_author")
    before = await scrape(production)
    client = await TransportWsClient.open(production.ws_url)
    try:
        await client.receive_type("connection_ack")
        await client.subscribe("1", "subscription { contentPublished { title } }")
        await client.handled()
        during = await scrape_until(
            production,
            lambda s: (
                s.get("gateway_subscriptions", field="contentPublished")
                > before.get("gateway_subscriptions", field="contentPublished")
            ),
        )
        assert (
            during.get("gateway_websocket_connections")
            == before.get("gateway_websocket_connections") + 1
        )
        assert (
            during.get("gateway_subscriptions", field="contentPublished")
            == before.get("gateway_subscriptions", field="contentPublished") + 1
        )
        created = await post(
            production,
            {
                "query": "mutation($i: CreateContentInput!) { createContent(input: $i) { id } }",
                "variables": {"i": {"title": "counted", "body": "b", "visibility": "PUBLIC"}},
            },
            author,
        )
        content_id = created.json()["data"]["createContent"]["id"]
        await post(
            production,
            {
                "query": "mutation($id: ID!) { publishContent(id: $id) { id } }",
                "variables": {"id": content_id},
            },
            author,
        )
        message = await client.receive_type("next")
        assert message["payload"]["data"]["contentPublished"]["title"] == "counted"
    finally:
        await client.close()

    def settled(samples: Samples) -> bool:
        delivered = samples.get("gateway_events_delivered_total")
        return delivered > before.get("gateway_events_delivered_total") and samples.get(
            "gateway_websocket_connections"
        ) == before.get("gateway_websocket_connections")

    after = await scrape_until(production, settled)
    assert (
        after.get("gateway_events_delivered_total") - before.get("gateway_events_delivered_total")
        >= 1
    )
    assert after.get("gateway_subscriptions", field="contentPublished") == before.get(
        "gateway_subscriptions", field="contentPublished"
    )
    assert after.get("gateway_websocket_connections") == before.get("gateway_websocket_connections")


async def test_rate_limit_refusals_are_counted_across_workers(production) -> None:
    token = await register(production, "big_spender")
    before = await scrape(production)
    statuses = []
    for _ in range(8):
        statuses.append((await post(production, {"query": EXPENSIVE}, token)).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429, statuses

    def refused(samples: Samples) -> float:
        return samples.get("gateway_rate_limited_total") - before.get("gateway_rate_limited_total")

    after = await scrape_until(production, lambda s: refused(s) >= 1)
    assert refused(after) == 1


async def test_request_log_lines_are_json_with_their_fields_and_no_secret(production) -> None:
    token = await register(production, "log_reader")
    login = await post(
        production,
        {
            "query": "mutation($i: LoginInput!) { login(input: $i) { token } }",
            "variables": {"i": {"login": "log_reader", "password": PASSWORD}},
        },
    )
    second = login.json()["data"]["login"]["token"]
    viewer = await post(production, {"query": "query Me { viewer { id handle } }"}, token)
    assert viewer.status_code == 200

    text = await asyncio.to_thread(production.log_holding, '"operation_name":"Me"')
    for secret in (PASSWORD, token, second, TEST_SECRET, TOKEN):
        assert secret not in text
    lines = request_lines(production)
    me = [line for line in lines if line["operation_name"] == "Me"]
    assert len(me) == 1, "one line per request"
    (line,) = me
    assert set(line) >= REQUEST_FIELDS, REQUEST_FIELDS - set(line)
    assert line["level"] == "INFO" and line["status"] == 200 and line["outcome"] == "ok"
    assert line["operation_type"] == "query" and line["viewer_id"] is not None
    assert line["sql_statements"] >= 1 and line["sql_ms"] > 0
    assert line["request_id"] == viewer.headers["x-request-id"]
    assert line["error_codes"] == []
    refused = [line for line in lines if line["error_codes"] == ["BAD_USER_INPUT"]]
    assert refused and refused[0]["outcome"] == "error"


async def test_every_series_is_exposed_once_used(production) -> None:
    # Multiprocess mode shows a labelled series once some worker has a sample of it.
    def names(samples: Samples) -> set[str]:
        return {name for name, _ in samples.values}

    def all_exposed(samples: Samples) -> bool:
        return all(any(n.startswith(series) for n in names(samples)) for series in SERIES)

    samples = await scrape_until(production, all_exposed)
    for series in SERIES:
        assert any(name.startswith(series) for name in names(samples)), series


async def test_metrics_on_their_own_address_add_up_the_workers(
    server_url, template_url, tmp_path
) -> None:
    databases = FreshDatabases(server_url)
    url = await databases.create()
    port = free_port()
    server = GatewayProcess(
        url,
        TEST_SECRET,
        tmp_path / "serve.log",
        serve_args=("--workers", "2"),
        GATEWAY_ENV="production",
        GATEWAY_METRICS_ADDRESS=f"127.0.0.1:{port}",
    )
    try:
        await asyncio.to_thread(server.wait_ready)
        for _ in range(5):
            assert (await post(server, {"query": QUERY})).status_code == 200
        labels = {"operation_type": "query", "operation_name": "Listing", "outcome": "ok"}
        async with httpx.AsyncClient() as client:
            public = await client.get(f"{server.url}/metrics")
            # The workers write their samples once a second; this process only reads them.
            deadline = time.monotonic() + 5
            while True:
                private = await client.get(f"http://127.0.0.1:{port}/metrics")
                counted = Samples(private.text).get("graphql_requests_total", **labels)
                if counted >= 5 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
    finally:
        server.stop()
        await databases.drop_all()
    assert public.status_code == 404, "not on the serving port"
    assert private.status_code == 200
    assert counted == 5
