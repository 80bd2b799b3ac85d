"""Walking a feed: stable pages while the world changes, cursors that cannot be forged,
and a cost that does not grow with the page size."""

import asyncio
from datetime import UTC, datetime, timedelta

from db.read_pool import Planning, ReadPool
from db.session import Database, StatementCounter, create_engine
from resolvers.viewer import Viewer
from tests.conftest import GraphQLClient, PlanningRecorder
from tests.factories import follow, make_content, make_user, react, set_preferences

FEED = """query($first: Int, $after: String) {
  feed(first: $first, after: $after) {
    edges { cursor node { id title } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def _walk(client, viewer, page_size, between_pages=None) -> list[str]:
    seen, after = [], None
    while True:
        data = await client.data(FEED, {"first": page_size, "after": after}, viewer=viewer)
        seen += [edge["node"]["id"] for edge in data["feed"]["edges"]]
        if not data["feed"]["pageInfo"]["hasNextPage"]:
            return seen
        after = data["feed"]["pageInfo"]["endCursor"]
        if between_pages:
            await between_pages()


async def test_paging_is_stable_while_content_reactions_and_preferences_change(
    fresh_database_url,
) -> None:
    engine = create_engine(fresh_database_url)
    db = Database(engine)
    client = GraphQLClient(db)
    now = datetime.now(UTC)
    try:
        reader = await make_user(db, handle="reader")
        authors = [await make_user(db) for _ in range(6)]
        fans = [await make_user(db) for _ in range(5)]
        tags = ("python", "rust", "go", "sql")
        contents = [
            await make_content(
                db,
                authors[i % len(authors)],
                title=f"item {i}",
                tags=(tags[i % 4],),
                at=now - timedelta(minutes=37 * i + 1),
            )
            for i in range(60)
        ]
        await follow(db, reader, authors[0])
        await set_preferences(db, reader, weights={"python": 0.5})
        viewer = Viewer.member(reader.id)

        reference = await _walk(client, viewer, 100)
        assert len(reference) == 60

        changes = 0

        async def change_the_world() -> None:
            nonlocal changes
            changes += 1
            await make_content(
                db, authors[1], title=f"new {changes}", tags=("rust",), at=datetime.now(UTC)
            )
            for k, fan in enumerate(fans):
                await react(db, fan, contents[(changes * 7 + k * 3) % len(contents)])
            await set_preferences(
                db, reader, weights={"rust": 1.0, "python": -1.0}, languages=("en",)
            )
            await client.data(
                "mutation($h: String!) { follow(handle: $h) { id } }",
                {"h": authors[changes % len(authors)].handle},
                viewer=viewer,
            )

        async def concurrently() -> None:
            # Let other work interleave with the walk instead of only between its pages.
            await asyncio.gather(change_the_world(), asyncio.sleep(0))

        walked = await _walk(client, viewer, 7, between_pages=concurrently)
        assert changes >= 8
        assert len(walked) == len(set(walked)), "no item twice"
        assert walked == reference, "no gaps: exactly the ranking the walk began with"

        fresh = await _walk(client, viewer, 100)
        assert fresh != reference, "the changes do change a walk started afterwards"
    finally:
        await engine.dispose()


async def test_a_forged_or_foreign_feed_cursor_is_bad_user_input(db, gql) -> None:
    author = await make_user(db)
    for _ in range(3):
        await make_content(db, author, at=datetime.now(UTC))
    page = await gql.data(FEED, {"first": 1})
    cursor = page["feed"]["pageInfo"]["endCursor"]
    contents_cursor = (await gql.data("{ contents(first: 1) { pageInfo { endCursor } } }"))[
        "contents"
    ]["pageInfo"]["endCursor"]
    for bad in (cursor[:-2] + "xx", contents_cursor, "nonsense"):
        result = await gql.execute(FEED, {"first": 1, "after": bad})
        assert result.errors[0].extensions["code"] == "BAD_USER_INPUT", bad


async def test_another_viewers_walk_cannot_be_continued(db, gql) -> None:
    author = await make_user(db)
    reader = await make_user(db)
    other = await make_user(db)
    for _ in range(3):
        await make_content(db, author, at=datetime.now(UTC))
    page = await gql.data(FEED, {"first": 1}, viewer=Viewer.member(reader.id))
    result = await gql.execute(
        FEED,
        {"first": 1, "after": page["feed"]["pageInfo"]["endCursor"]},
        viewer=Viewer.member(other.id),
    )
    assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"


async def test_feed_statement_count_does_not_grow_with_page_size(db, gql) -> None:
    reader = await make_user(db)
    authors = [await make_user(db) for _ in range(5)]
    for i in range(230):
        await make_content(
            db, authors[i % 5], tags=(f"t{i % 9}",), at=datetime.now(UTC) - timedelta(minutes=i)
        )
    await follow(db, reader, authors[0])
    await set_preferences(db, reader, weights={"t1": 0.7})
    viewer = Viewer.member(reader.id)
    query = """query($first: Int, $after: String) { feed(first: $first, after: $after) {
      edges { score reasons node { title reactionCount viewerHasReacted author { handle }
                                   tags { name viewerAffinity } } }
      pageInfo { endCursor } } }"""
    # The first read of a feed builds it (db/feed/rebuild.py); steady state is counted.
    await gql.data(query, {"first": 1}, viewer=viewer)
    counts = {}
    for first in (20, 100):
        with StatementCounter(db) as start:
            data = await gql.data(query, {"first": first}, viewer=viewer)
        with StatementCounter(db) as more:
            await gql.data(
                query,
                {"first": first, "after": data["feed"]["pageInfo"]["endCursor"]},
                viewer=viewer,
            )
        assert len(data["feed"]["edges"]) == first
        counts[first] = (start.count, more.count)
    assert counts[20] == counts[100], counts


async def test_first_pages_are_planned_once_per_connection(fresh_database_url, db) -> None:
    # Planning a first page costs as much as running it, and Postgres left to choose kept
    # planning it for every request on some connections (db/read_pool.py).
    pool = ReadPool(fresh_database_url, size=2)
    try:
        (row,) = await pool.fetch(
            "SELECT current_setting('plan_cache_mode')", planning=Planning.GENERIC
        )
    finally:
        await pool.close()
    assert row[0] == "force_generic_plan"

    recording = PlanningRecorder(db.conn)
    client = GraphQLClient(recording)
    author, reader = await make_user(db), await make_user(db)
    for i in range(3):
        await make_content(db, author, title=f"item {i}", minutes_ago=i + 1)
    viewer = Viewer.member(reader.id)
    first = await client.data(FEED, {"first": 2}, viewer=viewer)
    anonymous = await client.data(FEED, {"first": 2})
    assert set(recording.sent) == {Planning.GENERIC}
    assert first["feed"]["edges"] and anonymous["feed"]["edges"]
    recording.sent.clear()
    after = first["feed"]["pageInfo"]["endCursor"]
    await client.data(FEED, {"first": 2, "after": after}, viewer=viewer)
    assert recording.sent == [Planning.GENERIC], "later pages read their walk by key"


async def test_long_statements_stay_prepared_on_their_connection(fresh_database_url) -> None:
    # A first page with cursors and reasons is longer than asyncpg's 15 KiB default,
    # past which a statement is planned again at every execution.
    pool = ReadPool(fresh_database_url, size=1)
    long = "SELECT 1 AS one -- " + "a first page's worth of SQL " * 1_000
    try:
        assert (await pool.fetch(long))[0][0] == 1
        (row,) = await pool.fetch(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", long
        )
    finally:
        await pool.close()
    assert row[0] == 1
