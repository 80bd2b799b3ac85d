"""The number of SQL statements depends on a query's shape, never on its page size."""

from sqlalchemy import text

from db.session import StatementCounter
from resolvers.viewer import Viewer
from tests.factories import follow, make_content, make_user, react

DEEP = """
query($first: Int) {
  contents(first: $first) {
    totalCount
    edges { node {
      id title bodyHtml reactionCount viewerHasReacted
      author { handle followerCount followingCount viewerFollows
               contents(first: 2) { edges { node { title } } } }
      tags { name contentCount viewerAffinity }
    } }
  }
}
"""


async def _statements(db, gql, first: int) -> int:
    with StatementCounter(db) as counter:
        data = await gql.data(DEEP, {"first": first})
    assert len(data["contents"]["edges"]) == first
    return counter.count


async def test_statement_count_does_not_grow_with_page_size(db, gql) -> None:
    authors = [await make_user(db) for _ in range(12)]
    for i in range(110):
        author = authors[i % len(authors)]
        content = await make_content(db, author, tags=(f"tag{i % 7}", f"topic{i % 5}"))
        if i % 3 == 0:
            await react(db, authors[(i + 1) % len(authors)], content)
    await follow(db, authors[0], authors[1])

    flat = "query($first: Int) { contents(first: $first) { edges { node { title author { handle } tags { name } } } } }"
    with StatementCounter(db) as small:
        await gql.data(flat, {"first": 10})
    with StatementCounter(db) as large:
        await gql.data(flat, {"first": 100})
    # The whole page, in one statement.
    assert small.count == large.count == 1, large.statements

    # Every relation is part of it, the nested page of each author's contents included.
    with StatementCounter(db) as ten:
        ten_data = await gql.data(DEEP, {"first": 10})
    with StatementCounter(db) as hundred:
        await gql.data(DEEP, {"first": 100})
    assert ten.count == hundred.count == 1, hundred.statements
    # ...and each author's nested page is that author's newest two.
    for edge in ten_data["contents"]["edges"]:
        nested = edge["node"]["author"]["contents"]["edges"]
        assert len(nested) == 2


async def _contents_rows_read(db) -> int:
    """Rows of `contents` read in this transaction so far, by any scan: the `db`
    fixture's one connection runs the gateway's statements too."""
    async with db.session() as session:
        rows = await session.exec(
            text(
                "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
                " WHERE relname = 'contents'"
            )
        )
        return int(rows.one()[0])


async def test_a_signed_in_list_reads_its_page_not_the_whole_table(db, gql) -> None:
    # "Published, or the viewer's own" as one condition can use no index in the list's
    # order: Postgres read and sorted every row (245 ms a page at 1M contents).
    reader, author = await make_user(db), await make_user(db)
    async with db.session() as session:
        # Enough rows that reading them all is a choice a planner would regret.
        await session.exec(
            text(
                "INSERT INTO contents (author_id, title, body, status, visibility, language,"
                " published_at) SELECT :a, 'item ' || i, 'body', 'PUBLISHED', 'PUBLIC', 'en',"
                " now() - make_interval(mins => 10 + i) FROM generate_series(0, 4999) AS i"
            ),
            params={"a": author.id},
        )
        await session.commit()
    await make_content(db, reader, title="mine", visibility="MEMBERS", minutes_ago=15)
    async with db.session() as session:
        await session.exec(text("ANALYZE contents"))
        # As the gateway's read pools plan (db/read_pool.py): pages cost what memory does.
        await session.exec(text("SET LOCAL random_page_cost = 1.1"))
        await session.commit()
    before = await _contents_rows_read(db)
    data = await gql.data(
        "{ contents(first: 5) { edges { node { title } } } }", viewer=Viewer.member(reader.id)
    )
    read = await _contents_rows_read(db) - before
    titles = [e["node"]["title"] for e in data["contents"]["edges"]]
    assert titles == ["item 0", "item 1", "item 2", "item 3", "item 4"]
    assert read < 40, f"{read} rows of contents read for a page of 5"
