"""Every read costs Postgres one statement over HTTP (execution/executor.py), whatever
the root, the nesting or the viewer fields selected; a signed-in viewer's token is
checked in that same statement once the process has confirmed them (gateway/auth.py)."""

import pytest

from db.session import Database, StatementCounter, create_engine
from resolvers.ids import encode_id
from tests.conftest import TOKENS
from tests.factories import follow, make_content, make_user, react, set_preferences
from tests.gateway_client import gateway, graphql_view

PROFILE = """query($h: String!) { user(handle: $h) {
  id handle displayName bio followerCount followingCount viewerFollows email
  contents(first: 10) { totalCount edges { cursor node { id title reactionCount
    viewerHasReacted tags { name viewerAffinity } } } pageInfo { hasNextPage endCursor } } } }"""
CONTENT_FIELDS = """id title summary bodyHtml status visibility language reactionCount
  viewerHasReacted readingTimeMinutes createdAt updatedAt publishedAt
  author { handle followerCount viewerFollows } tags { name contentCount viewerAffinity }"""


@pytest.fixture
async def world(fresh_database_url):
    engine = create_engine(fresh_database_url)
    db = Database(engine)
    reader = await make_user(db, handle="reader")
    ada = await make_user(db, handle="ada")
    await follow(db, reader, ada)
    await follow(db, ada, reader)
    await set_preferences(db, reader, weights={"python": 0.5}, muted_tags=("noise",))
    items = [
        await make_content(db, ada, title=f"python {i}", tags=("python", "sql"), minutes_ago=i)
        for i in range(30)
    ]
    await react(db, reader, items[0])
    yield fresh_database_url, reader, items
    await engine.dispose()


def reads(items) -> dict[str, tuple[str, dict]]:
    content_id = encode_id("Content", items[0].id)
    return {
        "contents": (
            f"{{ contents(first: 20) {{ totalCount edges {{ node {{ {CONTENT_FIELDS} }} }} }} }}",
            {},
        ),
        "content": (
            f"query($id: ID!) {{ content(id: $id) {{ {CONTENT_FIELDS} }} }}",
            {"id": content_id},
        ),
        "node": (
            f"query($id: ID!) {{ node(id: $id) {{ id ... on Content {{ {CONTENT_FIELDS} }} }} }}",
            {"id": content_id},
        ),
        "profile": (PROFILE, {"h": "ada"}),
        "tags": (
            "{ tags { totalCount edges { cursor node { name contentCount viewerAffinity } } } }",
            {},
        ),
        "search": (
            '{ search(query: "python", first: 5) { totalCount edges { cursor node { title '
            "author { handle } } } pageInfo { endCursor } } }",
            {},
        ),
        "feed": (
            "{ feed(first: 5) { edges { cursor score reasons node { title tags { name } } } "
            "pageInfo { hasNextPage endCursor } } }",
            {},
        ),
        "notifications": (
            "{ notifications(first: 5) { totalCount edges { node { kind read actor { handle } "
            "content { title } } } } }",
            {},
        ),
        "viewer": (
            "{ viewer { handle email preferences { languages updatedAt followedTags { weight "
            "tag { name } } mutedTags { name } mutedAuthors { handle } } } }",
            {},
        ),
    }


async def test_every_read_costs_one_statement(world, tmp_path) -> None:
    url, reader, items = world
    token = TOKENS.issue(reader.id, 0).token
    headers = {"Authorization": f"Bearer {token}"}
    # Budgets per process: the shared limiter's statements (one per client on first
    # sight, one per process every 100 ms of spending) are not the request's, and would
    # land in whichever request's count they happened to run in.
    async with gateway(None, tmp_path, database_url=url, rate_limit_shared=False) as client:
        database = graphql_view(client).database

        async def counted(query: str, variables: dict) -> tuple[int, dict]:
            with StatementCounter(database) as counter:
                response = await client.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
            body = response.json()
            assert "errors" not in body, body
            return counter.count, body["data"]

        # The process's first sight of the viewer confirms their token on its own, and a
        # feed's first read builds it.
        first, _ = await counted(*reads(items)["contents"])
        assert first == 2
        await counted(*reads(items)["feed"])
        counts = {}
        for name, (query, variables) in reads(items).items():
            counts[name], data = await counted(query, variables)
            assert any(data.values()), (name, data)
        feed_page = await counted(*reads(items)["feed"])
        after = feed_page[1]["feed"]["pageInfo"]["endCursor"]
        counts["feed next page"], _ = await counted(
            "query($a: String) { feed(first: 5, after: $a) { edges { reasons node { title } } } }",
            {"a": after},
        )
        search = await counted(*reads(items)["search"])
        counts["search next page"], _ = await counted(
            'query($a: String) { search(query: "python", first: 5, after: $a) { totalCount '
            "edges { node { title } } } }",
            {"a": search[1]["search"]["pageInfo"]["endCursor"]},
        )
    assert counts == dict.fromkeys(counts, 1), counts
