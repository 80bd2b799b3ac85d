"""The number of SQL statements depends on a query's shape, never on its page size."""

from db.session import StatementCounter
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
