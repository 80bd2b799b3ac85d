"""Query limits: each refuses an operation one over it, before anything executes, and
lets one at it through; introspection fits the defaults."""

import asyncio
import logging

import pytest
from graphql import get_introspection_query

from db.session import StatementCounter
from gateway.documents import count_tokens
from tests.factories import make_content, make_user
from tests.gateway_client import error_of, gateway, graphql_view

NESTED = "{ contents(first: 1) { edges { node { author { handle } } } } }"  # depth 5


async def post(client, query, variables=None):
    body = {"query": query, **({"variables": variables} if variables else {})}
    return await client.post("/graphql", json=body)


def assert_too_complex(response, message: str) -> None:
    assert response.status_code == 200, response.text
    error = error_of(response)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert error["message"] == message
    assert "data" not in response.json()


async def test_depth_limit(db, tmp_path) -> None:
    async with gateway(db, tmp_path, max_depth=5) as client:
        assert "errors" not in (await post(client, NESTED)).json()
    async with gateway(db, tmp_path, max_depth=4) as client:
        assert_too_complex(await post(client, NESTED), "query depth 5 exceeds the limit of 4")


async def test_alias_limit_counts_aliases_inside_every_spread_of_a_fragment(db, tmp_path) -> None:
    query = """{ a: tags { totalCount } ...F ...F }
      fragment F on Query { b: tags { totalCount } }"""  # 1 + 2 spreads x 1 = 3 aliases
    async with gateway(db, tmp_path, max_aliases=3) as client:
        assert "errors" not in (await post(client, query)).json()
    async with gateway(db, tmp_path, max_aliases=2) as client:
        assert_too_complex(await post(client, query), "number of aliases 3 exceeds the limit of 2")


async def test_root_field_limit(db, tmp_path) -> None:
    query = "{ tags { totalCount } contents { totalCount } ... on Query { viewer { handle } } }"
    async with gateway(db, tmp_path, max_root_fields=3) as client:
        assert "errors" not in (await post(client, query)).json()
    async with gateway(db, tmp_path, max_root_fields=2) as client:
        assert_too_complex(
            await post(client, query), "number of root fields 3 exceeds the limit of 2"
        )


# contents = 1 + 10 x edges; edges = 1 + node; node = 1 + title(1) + author(1 + contents),
# inner contents = 1 + 5 x totalCount(1) = 6, so author 7, node 9, edges 10: 1 + 10 x 10.
NESTED_PAGES = """{ contents(first: 10) { edges { node { title
  author { contents(first: 5) { totalCount } } } } } }"""


@pytest.mark.parametrize(
    ("query", "variables", "cost"),
    [
        ("{ contents(first: 10) { edges { node { title } } } }", None, 31),
        # `first` omitted: the schema's default page size (20)
        ("{ contents { edges { node { title } } } }", None, 61),
        # from a variable, from the variable's default, capped at the largest page
        ("query($n: Int) { contents(first: $n) { edges { node { title } } } }", {"n": 10}, 31),
        ("query($n: Int = 7) { contents(first: $n) { edges { node { title } } } }", None, 22),
        ("{ contents(first: 5000) { edges { node { title } } } }", None, 301),
        (NESTED_PAGES, None, 101),
        # fragments and inline fragments count like the fields they stand for
        (
            """{ ...Page } fragment Page on Query {
               contents(first: 10) { edges { node { ... on Content { title } } } } }""",
            None,
            31,
        ),
    ],
)
async def test_cost_limit(db, tmp_path, query, variables, cost) -> None:
    async with gateway(db, tmp_path, max_cost=cost) as client:
        response = await post(client, query, variables)
        assert "QUERY_TOO_COMPLEX" not in response.text, response.text
    async with gateway(db, tmp_path, max_cost=cost - 1) as client:
        assert_too_complex(
            await post(client, query, variables),
            f"query cost {cost:,} exceeds the limit of {cost - 1:,}",
        )


async def test_token_limit_is_enforced_while_parsing(db, tmp_path) -> None:
    tokens = count_tokens(NESTED)
    async with gateway(db, tmp_path, max_tokens=tokens) as client:
        assert "errors" not in (await post(client, NESTED)).json()
    async with gateway(db, tmp_path, max_tokens=tokens - 1) as client:
        assert_too_complex(
            await post(client, NESTED),
            f"query of {tokens:,} tokens exceeds the limit of {tokens - 1:,}",
        )


async def test_query_length_limit(db, tmp_path) -> None:
    async with gateway(db, tmp_path, max_query_length=len(NESTED)) as client:
        assert "errors" not in (await post(client, NESTED)).json()
    async with gateway(db, tmp_path, max_query_length=len(NESTED) - 1) as client:
        assert_too_complex(
            await post(client, NESTED),
            f"query length {len(NESTED):,} characters exceeds the limit of {len(NESTED) - 1:,}",
        )


async def test_a_refused_operation_executes_nothing(db, tmp_path) -> None:
    mutation = """mutation { a: register(input: {handle: "ada", email: "ada@example.com",
      password: "correct horse battery", displayName: "Ada"}) { token }
      b: logout c: logout }"""
    async with gateway(db, tmp_path, max_aliases=2) as client:
        with StatementCounter(db) as counter:
            response = await post(client, mutation)
        assert error_of(response)["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        # The refusal is charged to the client's shared budget, which reads its bucket;
        # nothing of the operation itself runs.
        ran = [s for s in counter.statements if "rate_limit_buckets" not in s]
        assert ran == [], ran
        user = await post(client, '{ user(handle: "ada") { handle } }')
        assert user.json() == {"data": {"user": None}}


async def test_introspection_works_under_the_default_limits(db, tmp_path) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    async with gateway(db, tmp_path) as client:
        body = (await post(client, query)).json()
    assert "errors" not in body, body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_limits_apply_to_operations_that_do_not_come_over_http(db, tmp_path) -> None:
    """WebSocket operations reach the schema without the HTTP view's checks."""
    from resolvers.viewer import Viewer
    from tests.conftest import GraphQLClient

    async with gateway(db, tmp_path, max_depth=4) as client:
        schema = graphql_view(client).schema
    context_client = GraphQLClient(db)
    context_client.schema = schema
    result = await context_client.execute(NESTED, viewer=Viewer.anonymous())
    (error,) = result.errors
    assert error.extensions["code"] == "QUERY_TOO_COMPLEX"
    assert error.message == "query depth 5 exceeds the limit of 4"
    long = await context_client.execute(NESTED + " " * 50_000)
    assert long.errors[0].extensions["code"] == "QUERY_TOO_COMPLEX"


async def test_a_body_over_the_limit_gets_413(db, tmp_path) -> None:
    padding = {"query": NESTED, "variables": {"pad": "x" * 2_000}}
    async with gateway(db, tmp_path, max_body_bytes=1_000) as client:
        response = await client.post("/graphql", json=padding)
        assert response.status_code == 413
        error = error_of(response)
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["message"] == "request body exceeds the limit of 1,000 bytes"

        async def chunks():
            for _ in range(10):
                yield b" " * 200

        chunked = await client.post(
            "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert chunked.status_code == 413
        assert "1,000 bytes" in chunked.text
        small = await client.post("/graphql", json={"query": NESTED})
        assert small.status_code == 200 and "errors" not in small.json()


async def test_a_statement_over_the_timeout_gets_its_own_error(
    fresh_database_url, tmp_path, monkeypatch, caplog
) -> None:
    from db.reads.compile import Compiled, StatementCache

    def slow(self, statement):
        return Compiled("SELECT pg_sleep(5)::text", (), {})

    monkeypatch.setattr(StatementCache, "get", slow)
    settings = {"database_url": fresh_database_url, "db_statement_timeout": 0.2}
    async with gateway(None, tmp_path, **settings) as client:
        with caplog.at_level(logging.WARNING, logger="gateway.errors"):
            started = asyncio.get_running_loop().time()
            response = await post(client, "{ tags { edges { node { name } } } }")
            elapsed = asyncio.get_running_loop().time() - started
        assert elapsed < 3, "Postgres cancelled the statement, nobody waited it out"
        assert response.status_code == 200
        error = error_of(response)
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "statement timeout" in error["message"]
        assert "pg_sleep" not in response.text
        assert any("statement timeout" in r.getMessage() for r in caplog.records)
        # The pool is fine afterwards: the next query runs.
        monkeypatch.undo()
        again = await post(client, "{ tags { totalCount } }")
        assert again.json() == {"data": {"tags": {"totalCount": 0}}}


async def test_the_document_cache_skips_parsing_and_validating_a_repeated_query(
    db, tmp_path
) -> None:
    author = await make_user(db)
    await make_content(db, author)
    async with gateway(db, tmp_path, document_cache_size=2) as client:
        documents = graphql_view(client).guard.documents
        for _ in range(3):
            assert (await post(client, NESTED)).json()["data"]["contents"]["edges"]
        assert documents.misses == 1
        for query in ("{ tags { totalCount } }", "{ contents { totalCount } }"):
            await post(client, query)
        assert len(documents) == 2, "bounded: the least recently used one went"
        await post(client, NESTED)
        assert documents.misses == 4


def test_the_document_cache_is_bounded_by_characters_too() -> None:
    from gateway.documents import MAX_CACHED_CHARACTERS, DocumentCache
    from schema import build_schema

    documents = DocumentCache(build_schema()._schema, max_tokens=100_000, maxsize=1_000)
    big = "{ tags { totalCount } }" + " " * (MAX_CACHED_CHARACTERS // 4)
    for n in range(8):
        documents.get(big + " " * n)
    assert len(documents) == 3  # four would pass the character budget
    documents.get(big)
    assert documents.misses == 9, "the first one had been dropped"
