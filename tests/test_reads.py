"""Reads answer exactly what the schema promises, checked against answers built by
hand: every field of a rich document, each viewer's view of every status and
visibility, tag order, arguments a client got wrong, and the cases strawberry resolves
field by field (each root field still compiled into its own statement)."""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from graphql import OperationDefinitionNode, parse

from db.session import StatementCounter
from resolvers.cursors import CursorCodec
from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.conftest import TEST_SECRET
from tests.factories import follow, make_content, make_user, react, set_preferences

NOW = datetime.now(UTC).replace(microsecond=0)
CURSORS = CursorCodec(TEST_SECRET)

RICH = """
query($first: Int, $after: String, $filter: ContentFilter, $order: ContentOrder) {
  __typename
  page: contents(first: $first, after: $after, filter: $filter, orderBy: $order) {
    total: totalCount
    __typename
    edges {
      __typename
      cursor
      item: node {
        ...Fields
        ... on Content { heading: title }
        writer: author { id handle displayName bio role followerCount
                         followingCount viewerFollows __typename }
        tags { id name __typename }
      }
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor __typename }
  }
}
fragment Fields on Content {
  id title summary status visibility language reactionCount viewerHasReacted
  createdAt publishedAt __typename
}
"""


async def test_a_rich_document_gets_exactly_the_answer_built_by_hand(db, gql) -> None:
    ada = await make_user(db, handle="ada")
    fan = await make_user(db, handle="fan")
    first = await make_content(
        db, ada, title="first", tags=("rust", "go"), at=NOW - timedelta(hours=2)
    )
    second = await make_content(db, ada, title="second", at=NOW - timedelta(hours=1))
    await react(db, fan, first)
    await follow(db, fan, ada)
    data = await gql.data(RICH, {"first": 1}, viewer=Viewer.member(fan.id))

    def item(content, reacted: bool, reactions: int, tags: list[str]) -> dict:
        return {
            "id": encode_id("Content", content.id),
            "title": content.title,
            "summary": content.summary,
            "status": "PUBLISHED",
            "visibility": "PUBLIC",
            "language": "en",
            "reactionCount": reactions,
            "viewerHasReacted": reacted,
            "createdAt": content.created_at.isoformat(),
            "publishedAt": content.published_at.isoformat(),
            "__typename": "Content",
            "heading": content.title,
            "writer": {
                "id": encode_id("User", ada.id),
                "handle": "ada",
                "displayName": "Ada",
                "bio": None,
                "role": "MEMBER",
                "followerCount": 1,
                "followingCount": 0,
                "viewerFollows": True,
                "__typename": "User",
            },
            "tags": [
                {"id": encode_id("Tag", tag_id), "name": name, "__typename": "Tag"}
                for name, tag_id in tags
            ],
        }

    cursor = CURSORS.encode("contents:NEWEST", (second.listed_at, second.id))
    assert data == {
        "__typename": "Query",
        "page": {
            "total": 2,
            "__typename": "ContentConnection",
            "edges": [
                {"__typename": "ContentEdge", "cursor": cursor, "item": item(second, False, 0, [])}
            ],
            "pageInfo": {
                "hasNextPage": True,
                "hasPreviousPage": False,
                "startCursor": cursor,
                "endCursor": cursor,
                "__typename": "PageInfo",
            },
        },
    }
    after = await gql.data(RICH, {"first": 5, "after": cursor}, viewer=Viewer.member(fan.id))
    (edge,) = after["page"]["edges"]
    tag_ids = await _tag_ids(db, ("go", "rust"))
    assert edge["item"] == item(first, True, 1, [("go", tag_ids["go"]), ("rust", tag_ids["rust"])])
    assert after["page"]["pageInfo"]["hasPreviousPage"] is True
    assert after["page"]["pageInfo"]["hasNextPage"] is False


async def _tag_ids(db, names) -> dict[str, int]:
    import sqlalchemy as sa

    from db.reads.fields import TAGS

    async with db.session() as session:
        rows = await session.exec(sa.select(TAGS.c.name, TAGS.c.id).where(TAGS.c.name.in_(names)))
        return dict(rows.all())


async def _matrix(db):
    """Content of every status and visibility, by two authors."""
    author = await make_user(db, handle="author")
    reader = await make_user(db, handle="reader")
    admin = await make_user(db, handle="admin", role="ADMIN")
    cells = [
        ("PUBLISHED", "PUBLIC"),
        ("PUBLISHED", "MEMBERS"),
        ("PUBLISHED", "PRIVATE"),
        ("DRAFT", "PUBLIC"),
        ("ARCHIVED", "PUBLIC"),
    ]
    for i, (status, visibility) in enumerate(cells * 2):
        owner = author if i < len(cells) else reader
        await make_content(
            db,
            owner,
            title=f"{owner.handle} {status.lower()} {visibility.lower()}",
            status=status,
            visibility=visibility,
            tags=("python",),
            at=NOW - timedelta(minutes=i),
        )
    return author, reader, admin


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anonymous", ["author published public", "reader published public"]),
        (
            "reader",
            [
                "author published public",
                "author published members",
                "reader published public",
                "reader published members",
                "reader published private",
                "reader draft public",
                "reader archived public",
            ],
        ),
        ("admin", None),  # everything
    ],
)
async def test_each_viewer_sees_exactly_what_the_rules_allow(db, gql, who, expected) -> None:
    _, reader, admin = await _matrix(db)
    viewer = {
        "anonymous": Viewer.anonymous(),
        "reader": Viewer.member(reader.id),
        "admin": Viewer.admin(admin.id),
    }[who]
    data = await gql.data(RICH, {"first": 20}, viewer=viewer)
    titles = [e["item"]["title"] for e in data["page"]["edges"]]
    assert data["page"]["total"] == len(titles)
    if expected is None:
        assert len(titles) == 10
        return
    assert titles == expected
    tags = await gql.data(
        "{ tags { totalCount edges { node { name contentCount } } } }", viewer=viewer
    )
    published = sum("published" in t for t in expected)
    assert tags["tags"] == {
        "totalCount": 1,
        "edges": [{"node": {"name": "python", "contentCount": published}}],
    }


async def test_filters_orders_and_an_empty_page(db, gql) -> None:
    author = await make_user(db, handle="author")
    other = await make_user(db)
    popular = await make_content(
        db, author, title="popular", tags=("rust",), at=NOW - timedelta(hours=3)
    )
    await make_content(db, author, title="german", language="de", at=NOW - timedelta(hours=2))
    await make_content(db, other, title="other's", tags=("rust",), at=NOW - timedelta(hours=1))
    await react(db, other, popular)
    query = """query($first: Int, $filter: ContentFilter, $order: ContentOrder) {
      contents(first: $first, filter: $filter, orderBy: $order) {
        totalCount edges { node { title } } pageInfo { hasNextPage } } }"""

    async def titles(**variables) -> list[str]:
        data = await gql.data(query, {"first": 10, **variables})
        return [e["node"]["title"] for e in data["contents"]["edges"]]

    assert await titles() == ["other's", "german", "popular"]
    assert await titles(order="OLDEST") == ["popular", "german", "other's"]
    assert await titles(order="POPULAR") == ["popular", "other's", "german"]
    assert await titles(filter={"tags": ["#Rust"]}) == ["other's", "popular"]
    assert await titles(filter={"authorHandle": "@Author", "language": "DE"}) == ["german"]
    assert await gql.data(query, {"first": 0}) == {
        "contents": {"totalCount": 3, "edges": [], "pageInfo": {"hasNextPage": False}}
    }


async def test_tags_follow_the_viewers_weights_and_habits(db, gql) -> None:
    author = await make_user(db)
    fan = await make_user(db)
    await make_content(db, author, title="tagged", tags=("alpha", "beta", "gamma", "delta"))
    habit = await make_content(db, author, title="habit", tags=("gamma",))
    await react(db, fan, habit, at=NOW - timedelta(days=3))
    await set_preferences(db, fan, weights={"delta": 0.7, "alpha": -0.2})
    query = (
        '{ contents(filter: {tags: ["beta"]}) { edges { node { tags { name viewerAffinity } } } } }'
    )
    (edge,) = (await gql.data(query, viewer=Viewer.member(fan.id)))["contents"]["edges"]
    tags = edge["node"]["tags"]
    assert [t["name"] for t in tags] == ["delta", "gamma", "beta", "alpha"]
    affinity = {t["name"]: t["viewerAffinity"] for t in tags}
    assert affinity["delta"] == pytest.approx(0.7) and affinity["alpha"] == pytest.approx(-0.2)
    # One reaction three days old: 0.5 ^ (3 / 30) decayed, over itself plus 3.
    decayed = 0.5 ** (3 / 30)
    assert affinity["gamma"] == pytest.approx(decayed / (decayed + 3), rel=1e-3)
    assert affinity["beta"] == 0
    (anonymous,) = (await gql.data(query))["contents"]["edges"]
    assert [t["name"] for t in anonymous["node"]["tags"]] == ["alpha", "beta", "delta", "gamma"]


async def test_a_weight_wins_over_a_habit_of_the_same_tag(db, gql) -> None:
    """Even a weight of 0: the viewer said what they think of the tag."""
    author = await make_user(db)
    fan = await make_user(db)
    await make_content(db, author, title="tagged", tags=("alpha", "beta", "gamma", "delta"))
    for name in ("alpha", "beta", "gamma"):
        habit = await make_content(db, author, title=f"{name} habit", tags=(name,))
        await react(db, fan, habit, at=NOW - timedelta(days=1))
    await set_preferences(db, fan, weights={"alpha": -0.1, "beta": 0.0, "delta": 0.1})
    query = '{ contents(filter: {tags: ["delta"]}) { edges { node { tags { name viewerAffinity } } } } }'
    (edge,) = (await gql.data(query, viewer=Viewer.member(fan.id)))["contents"]["edges"]
    tags = edge["node"]["tags"]
    learned = 0.5 ** (1 / 30) / (0.5 ** (1 / 30) + 3)
    assert [t["name"] for t in tags] == ["gamma", "delta", "beta", "alpha"]
    # rel: NOW was taken when the module was imported, and reactions keep decaying.
    assert [t["viewerAffinity"] for t in tags] == pytest.approx([learned, 0.1, 0.0, -0.1], rel=1e-3)


@pytest.mark.parametrize(
    ("query", "variables", "path", "message"),
    [
        (
            '{ contents(after: "forged") { totalCount } }',
            None,
            ["contents"],
            "`after` is not a cursor",
        ),
        (
            "query($n: Int) { contents(first: $n) { totalCount } }",
            {"n": 1000},
            ["contents"],
            "at most 100",
        ),
        (
            "query($n: Int) { contents(first: $n) { totalCount } }",
            {"n": -1},
            ["contents"],
            "0 or more",
        ),
        ('{ search(query: "   ") { totalCount } }', None, ["search"], "must not be empty"),
        ('{ node(id: "not an id") { id } }', None, ["node"], "not a valid id"),
        ("{ notifications { totalCount } }", None, ["notifications"], "Sign in"),
    ],
)
async def test_arguments_a_client_got_wrong_are_errors_at_their_field(
    gql, query, variables, path, message
) -> None:
    result = await gql.execute(query, variables)
    (error,) = result.errors
    assert error.path == path and message in error.message
    expected = "UNAUTHENTICATED" if path == ["notifications"] else "BAD_USER_INPUT"
    assert error.extensions["code"] == expected


async def test_a_users_contents_are_theirs_alone(db, gql) -> None:
    """Only the user's own content, of it only what the viewer may see, newest first:
    not everybody's (the list once lost its author condition) nor the viewer's own."""
    ada, bob, reader = [await make_user(db, handle=h) for h in ("ada", "bob", "reader")]
    for minutes, (author, title, status, visibility) in enumerate(
        [
            (bob, "bob newest", "PUBLISHED", "PUBLIC"),
            (reader, "reader's draft", "DRAFT", "PUBLIC"),
            (ada, "ada members", "PUBLISHED", "MEMBERS"),
            (ada, "ada private", "PUBLISHED", "PRIVATE"),
            (ada, "ada draft", "DRAFT", "PUBLIC"),
            (bob, "bob older", "PUBLISHED", "PUBLIC"),
            (ada, "ada public", "PUBLISHED", "PUBLIC"),
        ]
    ):
        await make_content(
            db, author, title=title, status=status, visibility=visibility, minutes_ago=minutes
        )
    query = """query($h: String!) { user(handle: $h) {
      contents(first: 10) { totalCount edges { node { title author { handle } } } } } }"""

    async def listed(handle: str, viewer: Viewer | None = None) -> tuple[list[str], int]:
        data = await gql.data(query, {"h": handle}, viewer=viewer)
        connection = data["user"]["contents"]
        assert {e["node"]["author"]["handle"] for e in connection["edges"]} <= {handle}
        return [e["node"]["title"] for e in connection["edges"]], connection["totalCount"]

    member = Viewer.member(reader.id)
    assert await listed("ada", member) == (["ada members", "ada public"], 2)
    assert await listed("ada") == (["ada public"], 1)
    assert await listed("ada", Viewer.member(ada.id)) == (
        ["ada members", "ada private", "ada draft", "ada public"],
        4,
    )
    assert await listed("bob", member) == (["bob newest", "bob older"], 2)
    assert await listed("reader", member) == (["reader's draft"], 1)


async def test_an_error_deep_down_nulls_the_nearest_field_that_may_be_null(db, gql) -> None:
    await make_content(db, await make_user(db, handle="ada"))
    query = '{ user(handle: "ada") { handle contents(first: 1000) { totalCount } } }'
    result = await gql.execute(query)
    assert result.data == {"user": None}
    (error,) = result.errors
    assert error.path == ["user", "contents"] and error.extensions["code"] == "BAD_USER_INPUT"


async def test_skip_include_aliases_and_typenames_in_one_statement(db, gql) -> None:
    ada = await make_user(db, handle="ada")
    await make_content(db, ada, title="hello")
    query = """query($full: Boolean!) { a: user(handle: "ada") { handle
      more: contents(first: 1) @include(if: $full) { edges { node { title } } } }
      b: user(handle: "@ADA") { __typename name: handle @skip(if: $full) } }"""
    with StatementCounter(db) as counter:
        full = await gql.data(query, {"full": True})
    assert counter.count == 1
    assert full == {
        "a": {"handle": "ada", "more": {"edges": [{"node": {"title": "hello"}}]}},
        "b": {"__typename": "User"},
    }
    assert await gql.data(query, {"full": False}) == {
        "a": {"handle": "ada"},
        "b": {"__typename": "User", "name": "ada"},
    }


async def test_node_finds_each_type_and_nothing_hidden(db, gql) -> None:
    ada = await make_user(db, handle="ada")
    post = await make_content(db, ada, tags=("python",))
    draft = await make_content(db, ada, status="DRAFT")
    query = """query($id: ID!) { node(id: $id) { __typename id
      ... on User { handle } ... on Content { title } ... on Tag { name } } }"""
    tag_id = (await _tag_ids(db, ("python",)))["python"]
    for type_name, pk, field, value in [
        ("User", ada.id, "handle", "ada"),
        ("Content", post.id, "title", post.title),
        ("Tag", tag_id, "name", "python"),
    ]:
        found = await gql.data(query, {"id": encode_id(type_name, pk)})
        assert found == {
            "node": {"__typename": type_name, "id": encode_id(type_name, pk), field: value}
        }
    assert await gql.data(query, {"id": encode_id("Content", draft.id)}) == {"node": None}
    owner = await gql.data(
        query, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(ada.id)
    )
    assert owner["node"]["title"] == draft.title


async def test_a_mutation_returns_its_selection_read_in_one_statement(db, gql) -> None:
    ada = await make_user(db, handle="ada")
    create = """mutation { createContent(input: {title: "New", body: "word", tags: ["go"]}) {
      title status readingTimeMinutes bodyHtml author { handle email } tags { name } } }"""
    with StatementCounter(db) as counter:
        data = await gql.data(create, viewer=Viewer.member(ada.id))
    assert data == {
        "createContent": {
            "title": "New",
            "status": "DRAFT",
            "readingTimeMinutes": 1,
            "bodyHtml": "<p>word</p>\n",
            "author": {"handle": "ada", "email": "ada@example.test"},
            "tags": [{"name": "go"}],
        }
    }
    reads = [s for s in counter.statements if "json_build_object" in s]
    assert len(reads) == 1, "what it returns is one statement"


async def test_queries_without_a_plan_are_resolved_field_by_field_and_counted(db, gql) -> None:
    await make_content(db, await make_user(db))
    query = "{ __schema { queryType { name } } contents { totalCount } tags { totalCount } }"
    with StatementCounter(db) as counter:
        result = await gql.execute(query, fallback=True)
    assert result.errors is None
    assert result.data == {
        "__schema": {"queryType": {"name": "Query"}},
        "contents": {"totalCount": 1},
        "tags": {"totalCount": 0},
    }
    assert gql.executor.fallbacks == 1
    assert counter.count == 2, "each root field compiles its own selection"


async def test_the_setting_has_strawberry_resolve_each_root_field_over_http(db, tmp_path) -> None:
    from tests.gateway_client import gateway

    ada = await make_user(db, handle="ada")
    for i in range(3):
        await make_content(db, ada, title=f"post {i}", tags=("python",))
    query = {
        "query": "{ contents(first: 3) { edges { node { title author { handle } tags { name } } } } "
        'user(handle: "ada") { followerCount } }'
    }
    answers, sent = [], []
    for whole in (True, False):
        # Per-process budgets: the shared limiter's own statements are not the query's.
        async with gateway(db, tmp_path, whole_queries=whole, rate_limit_shared=False) as client:
            with StatementCounter(db) as counter:
                response = await client.post("/graphql", json=query)
            answers.append(response.json())
            sent.append(counter.count)
    assert answers[0] == answers[1] and len(answers[0]["data"]["contents"]["edges"]) == 3
    assert sent == [1, 2], "whole: one statement; field by field: one per root field"


async def test_a_failing_database_is_asked_once_and_reported_once(
    db, tmp_path, monkeypatch
) -> None:
    from db.errors import DatabaseUnavailable
    from db.session import BoundDatabase
    from tests.gateway_client import gateway

    calls = []

    async def away(self, sql, *args, planning=None, primary=False):
        calls.append(sql)
        raise DatabaseUnavailable("the read pool is away")

    monkeypatch.setattr(BoundDatabase, "fetch", away)
    async with gateway(db, tmp_path) as client:
        response = await client.post("/graphql", json={"query": "{ contents { totalCount } }"})
    assert response.status_code == 503
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert len(calls) == 1, "no second attempt through another path"


async def test_an_unexpected_failure_is_logged_and_masked(db, gql, monkeypatch, caplog) -> None:
    from execution.binding import Binder

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in binding")

    monkeypatch.setattr(Binder, "_contents", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        result = await gql.execute("{ contents { totalCount } }")
    (error,) = result.errors
    assert error.extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert "a bug in binding" not in error.message and "a bug in binding" in caplog.text


async def test_the_read_pool_recovers_from_a_killed_connection(fresh_database_url) -> None:
    import asyncpg

    from db.embedded import asyncpg_dsn
    from db.errors import DatabaseUnavailable
    from db.read_pool import ReadPool
    from db.session import Database, create_engine

    database = Database(create_engine(fresh_database_url), reads=ReadPool(fresh_database_url))
    admin = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
    try:
        # Killed in the middle of a statement: that read fails as unavailable (503),
        # never as an internal error, and its connection does not go back to the pool.
        sleeping = asyncio.create_task(database.fetch("SELECT pg_sleep(30)"))
        pid = None
        for _ in range(200):
            pid = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
                " AND state = 'active'"
            )
            if pid is not None:
                break
            await asyncio.sleep(0.025)
        assert pid is not None, "the read never started"
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        with pytest.raises(DatabaseUnavailable):
            await asyncio.wait_for(sleeping, 10)
        (again,) = await database.fetch("SELECT pg_backend_pid()")
        assert again[0] != pid

        # Killed while idle in the pool: the client may or may not have seen the socket
        # close before the next read. Either that read fails as unavailable, or the pool
        # already replaced the connection; the read after it works on a new backend.
        idle = again[0]
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", idle)
        with contextlib.suppress(DatabaseUnavailable):
            await database.fetch("SELECT 1")
        (after,) = await database.fetch("SELECT pg_backend_pid()")
        assert after[0] not in (pid, idle)
    finally:
        await admin.close()
        await database.dispose()


async def test_a_closed_read_pool_does_not_open_again(fresh_database_url) -> None:
    from db.errors import DatabaseUnavailable
    from db.read_pool import ReadPool

    pool = ReadPool(fresh_database_url)
    assert (await pool.fetch("SELECT 1"))[0][0] == 1
    await pool.close()
    with pytest.raises(DatabaseUnavailable):
        await pool.fetch("SELECT 1")


def test_remembered_plans_are_bounded_by_their_documents_characters() -> None:
    from execution.executor import Plans

    plans = Plans(maxsize=100, max_chars=1_000)
    for i in range(50):
        document = f"{{ contents(first: {i}) {{ totalCount }} }}" + " " * 100
        parsed = parse(document)
        assert any(isinstance(d, OperationDefinitionNode) for d in parsed.definitions)
        plans.put((document, None, ()), object())  # type: ignore[arg-type]
    # A plan keeps its parsed document alive: at most ~1,000 characters of them.
    assert 0 < len(plans._plans) <= 1_000 // 136
    assert plans._chars <= 1_000
