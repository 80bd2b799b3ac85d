"""Full-text search: language-aware matching, access rules, mutes, affinity, paging."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from db.read_pool import Planning, ReadPool
from db.reads import walks
from resolvers.viewer import Viewer
from tests.factories import follow, make_content, make_user, react, set_preferences

SEARCH = """query($q: String!, $first: Int, $after: String) {
  search(query: $q, first: $first, after: $after) {
    totalCount
    edges { cursor node { title } }
    pageInfo { hasNextPage endCursor }
  }
}"""
NOW = datetime.now(UTC)


async def found(gql, query, viewer=None, first=50) -> list[str]:
    data = await gql.data(SEARCH, {"q": query, "first": first}, viewer=viewer)
    titles = [e["node"]["title"] for e in data["search"]["edges"]]
    assert data["search"]["totalCount"] == len(titles)
    return titles


async def test_matches_stemmed_words_in_title_and_body(db, gql) -> None:
    author = await make_user(db)
    await make_content(db, author, title="Running databases", body="Notes on indexes.", at=NOW)
    await make_content(db, author, title="Cooking", body="She runs home every day.", at=NOW)
    await make_content(db, author, title="Unrelated", body="Nothing here.", at=NOW)
    assert sorted(await found(gql, "run")) == ["Cooking", "Running databases"]
    assert await found(gql, "index") == ["Running databases"]
    assert await found(gql, '"runs home"') == ["Cooking"]


async def test_title_matches_rank_above_body_matches(db, gql) -> None:
    author = await make_user(db)
    await make_content(db, author, title="Something else", body="postgres mentioned once", at=NOW)
    await make_content(db, author, title="Postgres internals", body="all about it", at=NOW)
    assert await found(gql, "postgres") == ["Postgres internals", "Something else"]


async def test_german_content_matches_german_stems(db, gql) -> None:
    author = await make_user(db)
    await make_content(
        db, author, title="Die Häuser", body="Über alte Häuser.", language="de", at=NOW
    )
    assert await found(gql, "Haus") == ["Die Häuser"]


async def test_search_applies_access_rules(db, gql) -> None:
    author = await make_user(db, handle="author")
    member = await make_user(db)
    for status, visibility in (
        ("PUBLISHED", "PUBLIC"),
        ("PUBLISHED", "MEMBERS"),
        ("PUBLISHED", "PRIVATE"),
        ("DRAFT", "PUBLIC"),
    ):
        await make_content(
            db,
            author,
            title=f"kafka {status} {visibility}",
            status=status,
            visibility=visibility,
            at=NOW,
        )
    assert await found(gql, "kafka") == ["kafka PUBLISHED PUBLIC"]
    assert sorted(await found(gql, "kafka", Viewer.member(member.id))) == [
        "kafka PUBLISHED MEMBERS",
        "kafka PUBLISHED PUBLIC",
    ]


async def test_muted_tags_authors_and_languages_are_not_found(db, gql) -> None:
    reader = await make_user(db)
    loud = await make_user(db, handle="loud")
    other = await make_user(db)
    await make_content(db, loud, title="graphql by loud", at=NOW)
    await make_content(db, other, title="graphql crypto", tags=("crypto",), at=NOW)
    await make_content(db, other, title="graphql auf deutsch", language="de", at=NOW)
    await make_content(db, other, title="graphql kept", at=NOW)
    await set_preferences(
        db, reader, muted_tags=("crypto",), muted_authors=(loud,), languages=("en",)
    )
    assert await found(gql, "graphql", Viewer.member(reader.id)) == ["graphql kept"]
    assert len(await found(gql, "graphql")) == 4, "only the reader's own preferences filter"


async def test_affinity_lifts_equally_relevant_results(db, gql) -> None:
    reader = await make_user(db)
    author = await make_user(db)
    await make_content(
        db, author, title="tuning guide", tags=("mysql",), at=NOW - timedelta(hours=1)
    )
    await make_content(
        db, author, title="tuning guide", tags=("postgres",), at=NOW - timedelta(hours=2)
    )
    viewer = Viewer.member(reader.id)
    data = await gql.data(SEARCH, {"q": "tuning"}, viewer=viewer)
    first_before = data["search"]["edges"][0]["node"]["title"]
    await set_preferences(db, reader, weights={"postgres": 0.9, "mysql": -0.5})
    data = await gql.data(
        'query { search(query: "tuning") { edges { node { tags { name } } } } }', viewer=viewer
    )
    assert [e["node"]["tags"][0]["name"] for e in data["search"]["edges"]] == ["postgres", "mysql"]
    assert first_before == "tuning guide"


async def test_each_match_scores_relevance_times_the_viewers_affinity(db, gql) -> None:
    # docs/ranking.md "Search": affinity is the sum of the viewer's weights of the item's
    # tags, plus its strongest learned habit among tags without a weight, plus 0.5 for a
    # followed author, clamped to [-1, 1]; the score is relevance x (1 + 0.5 x affinity).
    reader, followed, other = await make_user(db), await make_user(db), await make_user(db)
    await follow(db, reader, followed)
    await set_preferences(db, reader, weights={"postgres": 0.9, "mysql": -0.5})
    # Habits: three fresh reactions to #rust (learned 3 / (3 + 3) = 0.5), one to #mysql
    # (weighted, so its habit does not count) and one to #go (learned 1 / 4).
    for tags in (("rust",), ("rust",), ("rust", "mysql"), ("go",)):
        elsewhere = await make_content(db, other, title="elsewhere", tags=tags, at=NOW)
        await react(db, reader, elsewhere, at=NOW)
    expected = {
        "vector plain": 0.0,
        "vector weighted": 0.9 - 0.5,
        "vector habits": 0.5,
        "vector weighted mysql habit": -0.5 + 0.25,
        "vector followed": 0.5,
        "vector clamped": 1.0,
    }
    tags = {
        "vector plain": ("misc",),
        "vector weighted": ("postgres", "mysql"),
        "vector habits": ("rust", "go"),
        "vector weighted mysql habit": ("mysql", "go"),
        "vector followed": (),
        "vector clamped": ("postgres", "rust"),
    }
    ids = {}
    for i, title in enumerate(expected):
        author = followed if title in ("vector followed", "vector clamped") else other
        made = await make_content(
            db, author, title=title, tags=tags[title], at=NOW - timedelta(hours=i + 1)
        )
        ids[made.id] = title
    await found(gql, "vector", Viewer.member(reader.id))
    async with db.session() as session:
        conn = await session.connection()
        relevance = dict(
            (
                await conn.execute(
                    sa.text(
                        "SELECT id, ts_rank_cd(search_vector, gateway_search_tsquery('vector'), 32)"
                        " FROM contents WHERE id = ANY(:ids)"
                    ),
                    {"ids": list(ids)},
                )
            ).all()
        )
        stored = (
            await conn.execute(
                sa.text("SELECT content_ids, scores FROM feed_snapshots WHERE viewer_id = :r"),
                {"r": reader.id},
            )
        ).one()
    scores = {ids[i]: score for i, score in zip(*stored, strict=True)}
    assert scores == {
        title: pytest.approx(relevance[i] * (1 + 0.5 * expected[title]), rel=1e-4)
        for i, title in ids.items()
    }


async def test_search_pages_without_repeats_and_rejects_other_queries_cursors(db, gql) -> None:
    author = await make_user(db)
    for i in range(12):
        await make_content(db, author, title=f"rust note {i}", at=NOW - timedelta(minutes=i))
    seen, after = [], None
    while True:
        data = await gql.data(SEARCH, {"q": "rust", "first": 5, "after": after})
        seen += [e["node"]["title"] for e in data["search"]["edges"]]
        if not data["search"]["pageInfo"]["hasNextPage"]:
            break
        after = data["search"]["pageInfo"]["endCursor"]
    assert sorted(seen) == sorted(f"rust note {i}" for i in range(12))
    result = await gql.execute(SEARCH, {"q": "note", "first": 5, "after": after})
    assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"


async def test_blank_or_huge_queries_are_bad_input(gql) -> None:
    for query, words in (("   ", "must not be empty"), ("x" * 201, "at most 200")):
        result = await gql.execute(SEARCH, {"q": query})
        assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"
        assert "`query`" in result.errors[0].message and words in result.errors[0].message


async def test_each_distinct_parse_of_the_query_is_kept_once(db) -> None:
    # Repeated lexemes made Postgres think common terms far more common than they are
    # and pick slow plans (docs/performance.md); the match set must not change.
    async with db.session() as session:
        parsed = await (await session.connection()).execute(
            sa.text(
                "SELECT gateway_search_tsquery('python')::text,"
                " gateway_search_tsquery('kubernetes')::text,"
                " gateway_search_tsquery('!!!') IS NULL"
            )
        )
        assert tuple(parsed.one()) == ("'python'", "'kubernet' | 'kubernetes'", True)


async def test_a_query_without_words_is_refused_saying_what_to_add(db, gql) -> None:
    author = await make_user(db)
    await make_content(db, author, title="Punctuation!!!", at=NOW)
    result = await gql.execute(SEARCH, {"q": "!!!", "first": 5})
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert "no word to search for" in error.message


async def test_total_count_stops_at_the_count_limit(db, gql, monkeypatch) -> None:
    author = await make_user(db)
    for i in range(5):
        await make_content(db, author, title=f"limit note {i}", at=NOW - timedelta(minutes=i))
    monkeypatch.setattr(walks, "SEARCH_COUNT_LIMIT", 3)
    data = await gql.data(SEARCH, {"q": "limit", "first": 10})
    assert data["search"]["totalCount"] == 3
    assert len(data["search"]["edges"]) == 5


async def test_search_statements_are_planned_for_their_values(fresh_database_url, db) -> None:
    # A generic plan cannot see the search query: a common word took 8-10 s that way.
    from tests.conftest import GraphQLClient, PlanningRecorder

    pool = ReadPool(fresh_database_url, size=2)
    try:
        custom = await pool.fetch(
            "SELECT current_setting('plan_cache_mode')", planning=Planning.CUSTOM
        )
        cached = await pool.fetch("SELECT current_setting('plan_cache_mode')")
    finally:
        await pool.close()
    assert (custom[0][0], cached[0][0]) == ("force_custom_plan", "auto")

    recording = PlanningRecorder(db.conn)
    client = GraphQLClient(recording)
    await client.data(SEARCH, {"q": "anything"})
    await client.data("{ contents(first: 1) { totalCount } }")
    await client.data('{ contents(first: 1, filter: {tags: ["rare"]}) { totalCount } }')
    assert recording.sent == [Planning.CUSTOM, Planning.GENERIC, Planning.CHOSEN], (
        "searches are planned for each query; a list read in index order once per "
        "connection; a list a tag narrows as Postgres chooses (how rare the tag is decides)"
    )
