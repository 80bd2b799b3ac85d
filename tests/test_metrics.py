"""/metrics through the ASGI app: every series is there, and moves when queries, errors
and rate-limit refusals happen; operation names stay bounded; production keeps it
behind a token. (Across `--workers 2`, with subscriptions: tests/test_operations_process.py.)"""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_client import gateway

SERIES = (
    "graphql_requests_total",
    "graphql_request_duration_seconds",
    "graphql_errors_total",
    "gateway_db_statements_total",
    "gateway_db_statement_duration_seconds",
    "gateway_db_pool_connections",
    "gateway_websocket_connections",
    "gateway_subscriptions",
    "gateway_events_delivered_total",
    "gateway_rate_limited_total",
    "gateway_compiled_fallbacks_total",
)
QUERY = "query TopStories { contents(first: 3) { edges { node { title } } } }"


class Samples:
    def __init__(self, text: str) -> None:
        self.text = text
        self.values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.values[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get(self, name: str, **labels: str) -> float:
        return self.values.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.values.items() if n == name and wanted <= ls)

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(ls)[label] for (n, ls) in self.values if n == name and label in dict(ls)}


async def scrape(client, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Samples(response.text)


async def test_every_series_is_exposed_and_moves_with_queries_and_errors(db, tmp_path) -> None:
    async with gateway(db, tmp_path) as client:
        before = await scrape(client)
        for name in SERIES:
            assert f"# TYPE {name.removesuffix('_total')}" in before.text, name

        ok = await client.post("/graphql", json={"query": QUERY})
        assert ok.status_code == 200 and "errors" not in ok.json()
        bad = await client.post("/graphql", json={"query": "query Broken { nope }"})
        assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        after = await scrape(client)
    labels = {"operation_type": "query", "operation_name": "TopStories", "outcome": "ok"}
    assert (
        after.get("graphql_requests_total", **labels)
        == before.get("graphql_requests_total", **labels) + 1
    )
    timed = {"operation_type": "query", "operation_name": "TopStories"}
    assert after.get("graphql_request_duration_seconds_count", **timed) >= 1
    assert (
        after.get("graphql_errors_total", code="BAD_USER_INPUT")
        == before.get("graphql_errors_total", code="BAD_USER_INPUT") + 1
    )
    # An invalid document's name is not trusted as a label: it counts under "other".
    assert after.total("graphql_requests_total", outcome="error", operation_name="other") >= 1
    assert "Broken" not in after.label_values("graphql_requests_total", "operation_name")
    statements = after.get("gateway_db_statements_total") - before.get(
        "gateway_db_statements_total"
    )
    assert statements >= 1
    assert (
        after.get("gateway_db_statement_duration_seconds_count")
        - before.get("gateway_db_statement_duration_seconds_count")
        == statements
    )
    assert {"in_use", "idle"} <= after.label_values("gateway_db_pool_connections", "state")


async def test_a_rate_limit_refusal_is_counted(db, tmp_path) -> None:
    # QUERY costs 10: the budget pays for one.
    async with gateway(db, tmp_path, rate_limit_capacity=15, rate_limit_refill=0.001) as client:
        before = await scrape(client)
        first = await client.post("/graphql", json={"query": QUERY})
        assert first.status_code == 200
        refused = await client.post("/graphql", json={"query": QUERY})
        assert refused.status_code == 429
        after = await scrape(client)
    assert after.get("gateway_rate_limited_total") == before.get("gateway_rate_limited_total") + 1
    assert (
        after.get("graphql_errors_total", code="RATE_LIMITED")
        == before.get("graphql_errors_total", code="RATE_LIMITED") + 1
    )
    labels = {"operation_type": "query", "operation_name": "TopStories", "outcome": "error"}
    assert (
        after.get("graphql_requests_total", **labels)
        == before.get("graphql_requests_total", **labels) + 1
    )


async def test_a_query_without_a_whole_plan_is_counted(db, tmp_path) -> None:
    # Introspection beside a root field: the executor has no plan for it, so strawberry
    # resolves it field by field.
    query = "{ __schema { queryType { name } } contents(first: 1) { totalCount } }"
    async with gateway(db, tmp_path) as client:
        before = await scrape(client)
        answered = await client.post("/graphql", json={"query": query})
        assert answered.status_code == 200 and "errors" not in answered.json()
        after = await scrape(client)
    assert (
        after.get("gateway_compiled_fallbacks_total")
        == before.get("gateway_compiled_fallbacks_total") + 1
    )


async def test_operation_names_past_the_cap_share_one_label(db, tmp_path) -> None:
    async with gateway(db, tmp_path, metrics_operation_names=2) as client:
        for index in range(5):
            query = f"query Name{index} {{ contents(first: 1) {{ totalCount }} }}"
            assert (await client.post("/graphql", json={"query": query})).status_code == 200
        unnamed = await client.post(
            "/graphql", json={"query": "{ contents(first: 1) { totalCount } }"}
        )
        assert unnamed.status_code == 200
        samples = await scrape(client)
    names = samples.label_values("graphql_requests_total", "operation_name")
    assert {"Name0", "Name1"} <= names
    assert not {"Name2", "Name3", "Name4"} & names
    assert samples.total("graphql_requests_total", operation_name="other") >= 4


@pytest.mark.parametrize("production", [True, False])
async def test_metrics_need_the_token_when_one_is_set(db, tmp_path, production) -> None:
    env = "production" if production else "development"
    async with gateway(db, tmp_path, env=env, metrics_token="scrape-me-please") as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert "GATEWAY_METRICS_TOKEN" in refused.text
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        await scrape(client, Authorization="Bearer scrape-me-please")


async def test_production_without_a_token_or_address_does_not_serve_metrics(db, tmp_path) -> None:
    async with gateway(db, tmp_path, env="production") as client:
        assert (await client.get("/metrics")).status_code == 404
    async with gateway(db, tmp_path, metrics_address="127.0.0.1:9") as client:
        # Its own listener (started by `gateway serve`): not on the public port.
        assert (await client.get("/metrics")).status_code == 404
