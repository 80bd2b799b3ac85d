"""Listing content: Relay paging, ordering and filters, for an anonymous viewer."""

import base64

from tests.factories import make_content, make_user, react

PAGE = """
query Page($first: Int, $after: String, $order: ContentOrder, $filter: ContentFilter) {
  contents(first: $first, after: $after, orderBy: $order, filter: $filter) {
    totalCount
    edges { cursor node { id title reactionCount } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _walk(gql, page_size: int, **variables):
    titles, after, pages = [], None, 0
    while True:
        data = await gql.data(PAGE, {"first": page_size, "after": after, **variables})
        connection = data["contents"]
        titles += [edge["node"]["title"] for edge in connection["edges"]]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            return titles, pages
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]


async def test_walking_pages_returns_every_item_once_in_order(db, gql) -> None:
    author = await make_user(db)
    created = [await make_content(db, author, title=f"t{i:02}", minutes_ago=i) for i in range(23)]
    titles, pages = await _walk(gql, 5)
    assert titles == [c.title for c in created], "newest first, no duplicates, no gaps"
    assert pages == 5


async def test_oldest_order_walks_the_other_way(db, gql) -> None:
    author = await make_user(db)
    created = [await make_content(db, author, title=f"t{i:02}", minutes_ago=i) for i in range(7)]
    titles, _ = await _walk(gql, 3, order="OLDEST")
    assert titles == [c.title for c in reversed(created)]


async def test_popular_order_ranks_by_reactions_then_newest(db, gql) -> None:
    author = await make_user(db)
    fans = [await make_user(db) for _ in range(3)]
    quiet = await make_content(db, author, title="quiet", minutes_ago=1)
    loved = await make_content(db, author, title="loved", minutes_ago=3)
    liked = await make_content(db, author, title="liked", minutes_ago=2)
    for fan in fans:
        await react(db, fan, loved)
    await react(db, fans[0], liked)
    titles, _ = await _walk(gql, 2, order="POPULAR")
    assert titles == ["loved", "liked", "quiet"]
    assert quiet.title == "quiet"


async def test_content_published_between_pages_is_neither_repeated_nor_skipped(db, gql) -> None:
    author = await make_user(db)
    for i in range(6):
        await make_content(db, author, title=f"old{i}", minutes_ago=100 + i)
    first = await gql.data(PAGE, {"first": 3})
    await make_content(db, author, title="brand new", minutes_ago=0)
    rest = await gql.data(PAGE, {"first": 10, "after": first["contents"]["pageInfo"]["endCursor"]})
    seen = [e["node"]["title"] for e in first["contents"]["edges"] + rest["contents"]["edges"]]
    assert seen == [f"old{i}" for i in range(6)]


async def test_total_count_counts_the_whole_list_not_the_page(db, gql) -> None:
    author = await make_user(db)
    for _ in range(4):
        await make_content(db, author)
    data = await gql.data(PAGE, {"first": 1})
    assert data["contents"]["totalCount"] == 4
    assert len(data["contents"]["edges"]) == 1


async def test_first_zero_gives_an_empty_page_with_the_count(db, gql) -> None:
    author = await make_user(db)
    await make_content(db, author)
    data = await gql.data(PAGE, {"first": 0})
    assert data["contents"]["edges"] == []
    assert data["contents"]["totalCount"] == 1


async def test_cursors_and_ids_are_opaque(db, gql) -> None:
    author = await make_user(db)
    content = await make_content(db, author, title="secret title")
    data = await gql.data(PAGE, {"first": 1})
    edge = data["contents"]["edges"][0]
    for opaque in (edge["cursor"], edge["node"]["id"]):
        assert str(content.id) != opaque
        assert "secret" not in opaque and "PUBLISHED" not in opaque
        assert "listed_at" not in opaque and ":" not in opaque


async def _error(gql, variables):
    result = await gql.execute(PAGE, variables)
    assert result.data is None
    (error,) = result.errors
    return error


async def test_a_forged_or_foreign_cursor_is_bad_user_input(db, gql) -> None:
    author = await make_user(db)
    await make_content(db, author)
    await make_content(db, author)
    cursor = (await gql.data(PAGE, {"first": 1}))["contents"]["pageInfo"]["endCursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    tampered = base64.urlsafe_b64encode(raw.replace(b"20", b"19", 1)).decode().rstrip("=")
    for bad in ("nonsense", "", tampered, "a" * 40):
        error = await _error(gql, {"first": 1, "after": bad})
        assert error.extensions["code"] == "BAD_USER_INPUT", bad
        assert "`after`" in error.message
    # A cursor from the NEWEST list means nothing in the POPULAR one.
    error = await _error(gql, {"first": 1, "after": cursor, "order": "POPULAR"})
    assert error.extensions["code"] == "BAD_USER_INPUT"


async def test_first_is_capped(db, gql) -> None:
    error = await _error(gql, {"first": 101})
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert "`first` must be at most 100" in error.message
    error = await _error(gql, {"first": -1})
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert (await gql.data(PAGE, {"first": 100}))["contents"]["edges"] == []


async def test_filters_by_author_tags_language_and_status(db, gql) -> None:
    ada = await make_user(db, handle="ada")
    bob = await make_user(db, handle="bob")
    await make_content(db, ada, title="ada python", tags=("python",))
    await make_content(db, ada, title="ada rust de", tags=("rust",), language="de")
    await make_content(db, bob, title="bob python go", tags=("python", "go"))
    await make_content(db, bob, title="bob untagged")

    async def titles(filter_):
        data = await gql.data(PAGE, {"first": 50, "filter": filter_})
        assert data["contents"]["totalCount"] == len(data["contents"]["edges"])
        return sorted(e["node"]["title"] for e in data["contents"]["edges"])

    assert await titles({"authorHandle": "ada"}) == ["ada python", "ada rust de"]
    assert await titles({"authorHandle": "@ADA"}) == ["ada python", "ada rust de"]
    assert await titles({"authorHandle": "nobody"}) == []
    assert await titles({"tags": ["python"]}) == ["ada python", "bob python go"]
    assert await titles({"tags": ["go", "rust"]}) == ["ada rust de", "bob python go"]
    assert await titles({"tags": ["Python"]}) == ["ada python", "bob python go"]
    assert await titles({"language": "de"}) == ["ada rust de"]
    assert await titles({"authorHandle": "bob", "tags": ["python"]}) == ["bob python go"]
    assert len(await titles({"status": "PUBLISHED"})) == 4


async def test_user_contents_and_tags_list(db, gql) -> None:
    ada = await make_user(db, handle="ada")
    await make_content(db, ada, title="one", tags=("zeta", "alpha"), minutes_ago=2)
    await make_content(db, ada, title="two", tags=("alpha",), minutes_ago=1)
    data = await gql.data(
        """{ user(handle: "ada") { handle followerCount followingCount viewerFollows email
               contents(first: 1) { totalCount edges { node { title tags { name } } } } }
             tags(first: 1) { totalCount edges { node { name contentCount viewerAffinity } }
                              pageInfo { hasNextPage endCursor } } }"""
    )
    user = data["user"]
    assert user["handle"] == "ada" and user["email"] is None and user["viewerFollows"] is False
    assert user["contents"]["totalCount"] == 2
    assert user["contents"]["edges"][0]["node"] == {
        "title": "two",
        "tags": [{"name": "alpha"}],
    }
    tags = data["tags"]
    assert tags["totalCount"] == 2
    assert tags["edges"][0]["node"] == {"name": "alpha", "contentCount": 2, "viewerAffinity": 0.0}
    rest = await gql.data(
        "query($after: String) { tags(after: $after) { edges { node { name contentCount } } } }",
        {"after": tags["pageInfo"]["endCursor"]},
    )
    assert rest["tags"]["edges"] == [{"node": {"name": "zeta", "contentCount": 1}}]


async def test_a_variable_of_the_wrong_type_is_bad_user_input(gql) -> None:
    # graphql-core reports it with its own GraphQLError as the cause: still the client's.
    result = await gql.execute("query($n: Int!) { contents(first: $n) { totalCount } }", {"n": "x"})
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert "$n" in error.message and "Int cannot represent" in error.message


async def test_reading_time_rounds_words_up_to_whole_minutes(db, gql) -> None:
    author = await make_user(db)
    for words in (1, 230, 231, 461):
        await make_content(db, author, title=f"{words} words", body=" ".join(["word"] * words))
    data = await gql.data("{ contents(first: 10) { edges { node { title readingTimeMinutes } } } }")
    minutes = {
        e["node"]["title"]: e["node"]["readingTimeMinutes"] for e in data["contents"]["edges"]
    }
    assert minutes == {"1 words": 1, "230 words": 1, "231 words": 2, "461 words": 3}
