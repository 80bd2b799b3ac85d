"""The compiled read path answers exactly what the resolvers answer, in fewer
statements, and steps aside for whatever it cannot answer."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from db.session import StatementCounter
from resolvers import compiled
from resolvers.viewer import Viewer
from schema.compiled_plan import plan_operation
from tests.conftest import GraphQLClient
from tests.factories import follow, make_content, make_user, react, set_preferences

NOW = datetime.now(UTC)

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
        writer: author { id handle displayName bio role createdAt followerCount
                         followingCount viewerFollows __typename }
        tags { id name __typename }
      }
    }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor __typename }
  }
}
fragment Fields on Content {
  id title summary body status visibility language reactionCount viewerHasReacted
  createdAt updatedAt publishedAt __typename
}
"""


async def _world(db):
    """Content of every status and visibility, tags, reactions, follows, preferences."""
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
    made = []
    for i in range(15):
        status, visibility = cells[i % len(cells)]
        made.append(
            await make_content(
                db,
                author if i % 3 else reader,
                title=f"item {i}",
                status=status,
                visibility=visibility,
                tags=("python", "rust", "go")[: 1 + i % 3],
                at=NOW - timedelta(minutes=i, microseconds=i * 7),
            )
        )
    await react(db, reader, made[0], at=NOW - timedelta(days=2))
    await react(db, reader, made[5], at=NOW - timedelta(days=40))
    await react(db, author, made[6])
    await follow(db, reader, author)
    await set_preferences(db, reader, weights={"go": 0.4})
    return author, reader, admin


async def _both(db, query, variables, viewer, statements=None):
    """The compiled path's answer and the resolvers' (messages and extensions of errors
    but request ids); `statements` collects what each path sent."""
    answers = []
    for path in (True, False):
        with StatementCounter(db.engine) as counter:
            result = await GraphQLClient(db, compiled=path).execute(query, variables, viewer=viewer)
        if statements is not None:
            statements.append(counter.count)
        errors = [
            (e.message, {k: v for k, v in (e.extensions or {}).items() if k != "requestId"})
            for e in result.errors or []
        ]
        answers.append((result.data, errors))
    return answers


def _without_cursors(data):
    if isinstance(data, dict):
        return {
            k: _without_cursors(v)
            for k, v in data.items()
            if k not in {"cursor", "startCursor", "endCursor"}
        }
    if isinstance(data, list):
        return [_without_cursors(v) for v in data]
    return data


async def test_both_paths_answer_the_same_for_every_viewer(db) -> None:
    author, reader, admin = await _world(db)
    viewers = [
        Viewer.anonymous(),
        Viewer.member(reader.id),
        Viewer.member(author.id),
        Viewer.admin(admin.id),
    ]
    variations = [
        {"first": 6},
        {"first": 4, "order": "POPULAR"},
        {"first": 5, "order": "OLDEST"},
        {"first": 10, "filter": {"tags": ["rust"], "status": "PUBLISHED"}},
        {"first": 10, "filter": {"authorHandle": "@Author", "language": "EN"}},
        {"first": 0},
    ]
    for viewer in viewers:
        for variables in variations:
            sent: list[int] = []
            (compiled_data, compiled_errors), (resolved, resolved_errors) = await _both(
                db, RICH, variables, viewer, sent
            )
            assert compiled_errors == resolved_errors == []
            # The page and totalCount: the compiled path answered (an empty page is only
            # counted, on either path).
            assert sent[0] <= 2 and (sent[0] < sent[1] or variables["first"] == 0), sent
            # Cursors are equal too, except for their signatures' inputs: both decode.
            assert compiled_data == resolved, (viewer, variables)


async def test_pages_walk_the_same_whichever_path_made_the_cursor(db) -> None:
    _, reader, _ = await _world(db)
    viewer = Viewer.member(reader.id)
    compiled_client = GraphQLClient(db, compiled=True)
    resolver_client = GraphQLClient(db, compiled=False)
    seen: list[str] = []
    after = None
    for turn in range(20):
        client = compiled_client if turn % 2 else resolver_client
        data = await client.data(RICH, {"first": 2, "after": after}, viewer=viewer)
        seen += [edge["item"]["title"] for edge in data["page"]["edges"]]
        if not data["page"]["pageInfo"]["hasNextPage"]:
            break
        after = data["page"]["pageInfo"]["endCursor"]
    everything = await resolver_client.data(RICH, {"first": 100}, viewer=viewer)
    assert seen == [edge["item"]["title"] for edge in everything["page"]["edges"]]


async def test_tags_follow_the_viewers_weights_and_habits(db) -> None:
    author = await make_user(db)
    fan = await make_user(db)
    tagged = await make_content(db, author, tags=("alpha", "beta", "gamma", "delta"))
    habit = await make_content(db, author, tags=("gamma",))
    await react(db, fan, habit, at=NOW - timedelta(days=3))
    await set_preferences(db, fan, weights={"delta": 0.7, "alpha": -0.2})
    query = "{ contents(first: 5) { edges { node { title tags { name } } } } }"
    (compiled_data, _), (resolved, _) = await _both(db, query, None, Viewer.member(fan.id))
    assert compiled_data == resolved
    tags = next(
        e["node"]["tags"]
        for e in compiled_data["contents"]["edges"]
        if e["node"]["title"] == tagged.title
    )
    assert [t["name"] for t in tags] == ["delta", "gamma", "beta", "alpha"]


async def test_the_feed_ranks_and_explains_the_same_on_both_paths(db) -> None:
    _, reader, _ = await _world(db)
    query = """query($after: String) { feed(first: 3, after: $after) {
      edges { cursor score reasons node { id title viewerHasReacted author { handle }
                                          tags { name } } }
      pageInfo { hasNextPage hasPreviousPage } } }"""
    for viewer in (Viewer.anonymous(), Viewer.member(reader.id)):
        walks, sent = [], []
        # Resolvers first: an anonymous walk started then is shared by the second.
        for path in (False, True):
            client = GraphQLClient(db, compiled=path)
            walk, after = [], None
            with StatementCounter(db.engine) as counter:
                while True:
                    data = await client.data(query, {"after": after}, viewer=viewer)
                    walk += data["feed"]["edges"]
                    if not data["feed"]["pageInfo"]["hasNextPage"]:
                        break
                    after = data["feed"]["edges"][-1]["cursor"]
            sent.append(counter.count)
            # Each walk ranks when it starts: freshness moves on by the microsecond.
            walks.append([{**e, "score": round(e["score"], 3)} for e in _without_cursors(walk)])
        assert walks[0] == walks[1] and walks[0], viewer
        assert sent[1] < sent[0], "the compiled path answered, with fewer statements"


async def test_one_statement_for_a_page_and_none_per_item(db, engine) -> None:
    author = await make_user(db)
    for i in range(30):
        await make_content(db, author, tags=("python",), at=NOW - timedelta(minutes=i))
    client = GraphQLClient(db, compiled=True)
    query = """query($first: Int) { contents(first: $first) { edges { node {
      id title viewerHasReacted author { handle viewerFollows } tags { name } } } } }"""
    for first in (1, 30):
        with StatementCounter(engine) as counter:
            await client.data(query, {"first": first}, viewer=Viewer.member(author.id))
        assert counter.count == 1, counter.statements


def _plan(document: str):
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return plan_operation(operation, fragments)


@pytest.mark.parametrize(
    "document",
    [
        "{ contents { edges { node { bodyHtml } } } }",  # rendered in Python
        "{ contents { edges { node { tags { contentCount } } } } }",  # per viewer, per tag
        "{ contents { edges { node { author { email } } } } }",
        "{ contents { edges { node { author { contents { totalCount } } } } } }",
        "{ contents { edges { node { title @include(if: true) } } } }",
        "{ contents { edges { node { title } } } viewer { handle } }",
        "{ contents { edges { node { title } node { id } } } }",
        '{ search(query: "x") { edges { node { title } } } }',
        "mutation { logout }",
        "{ contents { edges { node { ... on Node { id } } } } }",
        # A feed's first page stores a walk: not repeated if another list fails.
        "{ feed { edges { node { id } } } contents { totalCount } }",
    ],
)
def test_what_the_compiled_path_leaves_to_the_resolvers(document: str) -> None:
    assert _plan(document) is None


async def test_documents_without_a_plan_and_bad_arguments_get_the_resolvers_answer(db) -> None:
    author = await make_user(db)
    await make_content(db, author, body="**bold**")
    for query, variables in [
        ("{ contents { edges { node { bodyHtml } } } }", None),
        ('{ contents(after: "forged") { totalCount } }', None),
        ("query($n: Int) { contents(first: $n) { totalCount } }", {"n": 1000}),
        ("query($n: Int!) { contents(first: $n) { totalCount } }", {"n": "x"}),
        ('{ contents(filter: {tags: ["Not A Tag!"]}) { totalCount } }', None),
    ]:
        (compiled_data, compiled_errors), (resolved, resolved_errors) = await _both(
            db, query, variables, Viewer.anonymous()
        )
        assert (compiled_data, compiled_errors) == (resolved, resolved_errors), query


async def test_an_unexpected_failure_is_logged_and_the_resolvers_answer(
    db, monkeypatch, caplog
) -> None:
    author = await make_user(db)
    await make_content(db, author, title="still here")

    async def broken(*args, **kwargs):
        raise RuntimeError("a bug in the compiled path")

    monkeypatch.setattr(compiled, "contents_page", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.compiled"):
        data = await GraphQLClient(db, compiled=True).data(
            "{ contents { edges { node { title } } } }"
        )
    assert data == {"contents": {"edges": [{"node": {"title": "still here"}}]}}
    assert "a bug in the compiled path" in caplog.text


async def test_the_setting_turns_the_compiled_path_off_over_http(db, tmp_path) -> None:
    from tests.gateway_client import gateway

    author = await make_user(db, handle="ada")
    for i in range(3):
        await make_content(db, author, title=f"post {i}", tags=("python",))
    query = {
        "query": "{ contents(first: 3) { edges { node { title author { handle } tags { name } } } } }"
    }
    answers, sent = [], []
    for enabled in (True, False):
        async with gateway(db, tmp_path, compiled_reads=enabled) as client:
            # The first request of a viewer in a process reads its shared rate-limit
            # bucket (gateway/shared_rate_limits.py); counted here: the ones after it.
            await client.post("/graphql", json=query)
            with StatementCounter(db.engine) as counter:
                response = await client.post("/graphql", json=query)
            answers.append(response.json())
            sent.append(counter.count)
    assert answers[0] == answers[1] and len(answers[0]["data"]["contents"]["edges"]) == 3
    # Off, the resolvers read contents, authors and tags in three statements.
    assert sent == [1, 3]


async def test_the_read_pool_recovers_from_a_killed_connection(fresh_database_url) -> None:
    import asyncpg

    from db.embedded import asyncpg_dsn
    from db.errors import DatabaseUnavailable
    from db.read_pool import ReadPool
    from db.session import Database, create_engine

    database = Database(create_engine(fresh_database_url), reads=ReadPool(fresh_database_url))
    admin = await asyncpg.connect(asyncpg_dsn(fresh_database_url))
    try:
        (row,) = await database.fetch("SELECT pg_backend_pid()")
        await admin.execute("SELECT pg_terminate_backend($1)", row[0])
        with pytest.raises(DatabaseUnavailable):
            await database.fetch("SELECT 1")
        # The dead connection left the pool; the next read opens a new one.
        (again,) = await database.fetch("SELECT pg_backend_pid()")
        assert again[0] != row[0]
    finally:
        await admin.close()
        await database.dispose()


def test_remembered_plans_are_bounded_by_their_documents_characters() -> None:
    from schema.compiled_plan import Plans

    plans = Plans(maxsize=100, max_chars=1_000)
    for i in range(50):
        document = f"{{ contents(first: {i}) {{ totalCount }} }}" + " " * 100
        parsed = parse(document)
        operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
        assert plans.get(document, operation, {}) is not None
    # A plan keeps its parsed document alive: at most ~1,000 characters of them.
    assert 0 < len(plans._plans) <= 1_000 // 136
    assert plans._chars <= 1_000


async def test_http_asks_the_compiled_path_once_then_the_resolvers(
    db, tmp_path, monkeypatch
) -> None:
    from db.errors import DatabaseUnavailable
    from tests.gateway_client import gateway

    author = await make_user(db)
    await make_content(db, author, title="answered")
    calls = []

    async def away(*args, **kwargs):
        calls.append(1)
        raise DatabaseUnavailable("the read pool is away")

    monkeypatch.setattr(compiled, "contents_page", away)
    async with gateway(db, tmp_path) as client:
        response = await client.post(
            "/graphql", json={"query": "{ contents { edges { node { title } } } }"}
        )
    assert response.json() == {"data": {"contents": {"edges": [{"node": {"title": "answered"}}]}}}
    assert calls == [1], "the schema extension must not ask again after the view did"


async def test_a_closed_read_pool_does_not_open_again(fresh_database_url) -> None:
    from db.errors import DatabaseUnavailable
    from db.read_pool import ReadPool

    pool = ReadPool(fresh_database_url)
    assert (await pool.fetch("SELECT 1"))[0][0] == 1
    await pool.close()
    with pytest.raises(DatabaseUnavailable):
        await pool.fetch("SELECT 1")
