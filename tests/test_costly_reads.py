"""Reads that cost the database more than their page size says are charged what they cost
or refused: ranking (search, feed) whatever `first` says, searches for nothing but
exclusions, and any request that outlasts its time budget."""

import asyncio
import string
import time
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text

from db.embedded import asyncpg_dsn
from db.read_pool import Planning
from db.session import StatementCounter
from tests.factories import make_content, make_user
from tests.gateway_client import error_of, gateway, graphql_view

NOW = datetime.now(UTC)
# The flood from the issue: every letter and digit excluded, twice over.
NEGATIONS = " ".join("-" + c for c in string.ascii_lowercase * 2 + string.digits)
ALIASED_SEARCH = (
    "{ "
    + " ".join(
        f'a{i}: search(query: "{NEGATIONS}", first: 0) {{ pageInfo {{ hasNextPage }} }}'
        for i in range(20)
    )
    + " }"
)


async def post(client, query, variables=None, headers=None):
    body = {"query": query, "variables": variables or {}}
    return await client.post("/graphql", json=body, headers=headers or {})


async def token_for(client, handle: str) -> str:
    mutation = """mutation($i: RegisterInput!) { register(input: $i) { token } }"""
    variables = {
        "i": {
            "handle": handle,
            "email": f"{handle}@example.com",
            "password": "correct horse battery",
            "displayName": handle,
        }
    }
    return str((await post(client, mutation, variables)).json()["data"]["register"]["token"])


async def test_twenty_aliased_searches_cost_twenty_rankings_and_are_refused(db, tmp_path) -> None:
    # Per-process budgets: the shared limiter's own statements are not the operation's.
    async with gateway(db, tmp_path, rate_limit_shared=False) as client:
        with StatementCounter(db) as counter:
            response = await post(client, ALIASED_SEARCH)
    error = error_of(response)
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "query cost"
    # 20 x (1 + ranking 500 + pageInfo 2): first: 0 is no discount.
    assert error["message"] == "query cost 10,060 exceeds the limit of 10,000"
    assert counter.count == 0, "refused before anything ran"


async def test_a_ranked_field_costs_its_ranking_whatever_first_says(db, tmp_path) -> None:
    query = "{ feed(first: 0) { pageInfo { hasNextPage } } }"  # 1 + 500 + 1 x 2
    async with gateway(db, tmp_path, max_cost=503) as client:
        assert "errors" not in (await post(client, query)).json()
    async with gateway(db, tmp_path, max_cost=502) as client:
        error = error_of(await post(client, query))
    assert error["message"] == "query cost 503 exceeds the limit of 502"
    async with gateway(db, tmp_path, max_cost=502, ranking_cost=499) as client:
        assert "errors" not in (await post(client, query)).json(), "the cost is a setting"


async def test_a_page_of_zero_costs_like_a_page_of_one(db, tmp_path) -> None:
    query = "{ contents(first: 0) { totalCount } }"  # 1 + 1 x totalCount, which still counts
    async with gateway(db, tmp_path, max_cost=1) as client:
        error = error_of(await post(client, query))
    assert error["message"] == "query cost 2 exceeds the limit of 1"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (NEGATIONS, "only excludes words"),
        ("-python", "only excludes words"),
        ('-"time zones"', "only excludes words"),
        ("python or -rust", "on each side of OR"),
        ("!!! ...", "no word to search for"),
    ],
)
async def test_a_search_with_no_word_to_find_is_refused_before_any_sql(
    db, tmp_path, query, says
) -> None:
    document = "query($q: String!) { search(query: $q, first: 5) { totalCount } }"
    # Per-process budgets: the shared limiter's own statements are not the operation's.
    async with gateway(db, tmp_path, rate_limit_shared=False) as client:
        with StatementCounter(db) as counter:
            response = await post(client, document, {"q": query})
    error = error_of(response)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "query"
    assert says in error["message"]
    assert counter.count == 0


async def test_a_search_with_a_word_to_find_may_exclude_others(db, tmp_path) -> None:
    author = await make_user(db)
    await make_content(db, author, title="Python and Rust", at=NOW)
    await make_content(db, author, title="Python alone", at=NOW)
    document = "query($q: String!) { search(query: $q) { edges { node { title } } } }"
    async with gateway(db, tmp_path) as client:
        for query in ("python -rust", "python -rust or nothing-matches-this"):
            body = (await post(client, document, {"q": query})).json()
            titles = [edge["node"]["title"] for edge in body["data"]["search"]["edges"]]
            assert titles == ["Python alone"], query


async def test_the_database_leaves_out_parses_it_cannot_search_by_index(db) -> None:
    # `the` is an English stop word, so English parses `the -python` as `!'python'` alone:
    # a query that matches nearly every row. Only the indexable parse is kept.
    async with db.session() as session:
        parsed = await session.exec(
            text(
                "SELECT gateway_search_tsquery('the -python')::text,"
                " gateway_search_tsquery('-python') IS NULL,"
                " gateway_search_tsquery('python or -rust') IS NULL"
            )
        )
        assert tuple(parsed.one()) == ("'the' & !'python'", True, True)


async def _walks(db) -> int:
    async with db.session() as session:
        return int((await session.exec(text("SELECT count(*) FROM feed_snapshots"))).one()[0])


async def _scans(db) -> dict[str, int]:
    """Scans of each table in this transaction so far: the `db` fixture's one connection
    runs the gateway's statements too, and Postgres counts them per transaction."""
    async with db.session() as session:
        rows = await session.exec(
            text("SELECT relname, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables")
        )
        return {str(name): int(scans) for name, scans in rows.all()}


# What ranking a viewer's feed or search reads: their follows, tags, habits and mutes, and
# the feed built from them. A page of one reads every one of these.
RANKING_INPUTS = {
    "follows", "followed_tags", "muted_tags", "muted_authors", "preferences", "reactions",
    "feed_habits", "feed_entries",
}  # fmt: skip


@pytest.mark.parametrize(
    ("query", "may_read"),
    [
        # The token check, and the stored feed's shared page (no viewer's ranking).
        (
            "{ feed(first: 0) { pageInfo { hasNextPage } } }",
            {"users", "feed_state", "feed_shared", "contents", "content_tags"},
        ),
        # The token check alone: the search statement stops before it reads a row.
        ('{ search(query: "python", first: 0) { pageInfo { hasNextPage } } }', {"users"}),
    ],
    ids=["feed", "search"],
)
async def test_a_page_of_zero_ranks_nothing(db, tmp_path, query, may_read) -> None:
    author = await make_user(db)
    await make_content(db, author, title="Python now", at=NOW)
    # Per-process budgets: the shared limiter's statements would read tables of their own.
    async with gateway(db, tmp_path, rate_limit_shared=False) as client:
        headers = {"Authorization": f"Bearer {await token_for(client, 'zero_reader')}"}
        walks = await _walks(db)
        before = await _scans(db)
        body = (await post(client, query, headers=headers)).json()
        after = await _scans(db)
    assert "errors" not in body, body
    (connection,) = body["data"].values()
    assert connection["pageInfo"] == {"hasNextPage": False}
    read = {table for table, scans in after.items() if scans > before.get(table, 0)}
    assert not read & RANKING_INPUTS, f"ranked: read {sorted(read & RANKING_INPUTS)}"
    assert read <= may_read, sorted(read - may_read)
    assert await _walks(db) == walks, "no ranking was stored: none ran"


async def test_a_page_of_zero_still_counts_when_asked(db, tmp_path) -> None:
    author = await make_user(db)
    for title in ("Python one", "Python two"):
        await make_content(db, author, title=title, at=NOW)
    query = '{ search(query: "python", first: 0) { totalCount edges { cursor } } }'
    async with gateway(db, tmp_path) as client:
        body = (await post(client, query)).json()
    assert body == {"data": {"search": {"totalCount": 2, "edges": []}}}


async def test_a_request_that_outlasts_its_time_budget_is_cancelled(
    fresh_database_url, tmp_path
) -> None:
    query = "{ contents(first: 1) { totalCount edges { node { title } } } }"
    # Another session holds the table: the request's statements wait, as a slow one would.
    blocker = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
    async with gateway(
        None, tmp_path, database_url=fresh_database_url, request_time_budget=0.5
    ) as client:
        assert "errors" not in (await post(client, query)).json()
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE contents IN ACCESS EXCLUSIVE MODE")
        try:
            started = time.monotonic()
            response = await post(client, query)
            elapsed = time.monotonic() - started
            # The server's cancellation is asynchronous (a connection of its own).
            deadline = time.monotonic() + 5
            while True:
                waiting = await blocker.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                if waiting == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
        finally:
            await transaction.rollback()
        assert waiting == 0, "the database stopped the request's statement"
        error = error_of(response)
        assert error["extensions"] == {
            "code": "QUERY_TOO_COMPLEX",
            "limit": "request time budget",
        }
        assert "time budget of 0.5 s" in error["message"]
        assert elapsed < 3, "answered when the budget ran out, not at the statement timeout"
        assert "errors" not in (await post(client, query)).json(), "the pool is still healthy"
    await blocker.close()


async def test_operations_refused_for_their_size_still_spend_the_budget(db, tmp_path) -> None:
    # Each refusal costs the largest query allowed (10,000): two fit in 25,000.
    async with gateway(db, tmp_path, rate_limit_capacity=25_000, rate_limit_refill=0.1) as client:
        codes = [
            error_of(await post(client, ALIASED_SEARCH))["extensions"]["code"] for _ in range(3)
        ]
        limited = await post(client, ALIASED_SEARCH)
    assert codes == ["QUERY_TOO_COMPLEX", "QUERY_TOO_COMPLEX", "RATE_LIMITED"]
    assert limited.status_code == 429


async def test_a_budget_spent_waiting_for_a_connection_is_unavailability(
    fresh_database_url, tmp_path
) -> None:
    query = "{ contents(first: 1) { edges { node { title } } } }"
    async with gateway(
        None, tmp_path, database_url=fresh_database_url, request_time_budget=0.3, db_pool_size=1
    ) as client:
        assert "errors" not in (await post(client, query)).json()
        database = graphql_view(client).database
        # Every connection busy elsewhere: the one of the read pool this list plans on
        # (generic plans), and the engine's two.
        pool = await database.reads._opened(Planning.GENERIC)
        read = await pool.acquire()
        try:
            async with database.engine.connect() as one, database.engine.connect() as two:
                await one.exec_driver_sql("SELECT 1")
                await two.exec_driver_sql("SELECT 1")
                response = await post(client, query)
        finally:
            await pool.release(read)
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert error_of(response)["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "errors" not in (await post(client, query)).json()
