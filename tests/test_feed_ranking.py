"""The feed's order, with hand-built data whose right order is known."""

from datetime import UTC, datetime, timedelta

import pytest

from resolvers.viewer import Viewer
from tests.factories import follow, make_content, make_user, react, set_preferences

FEED = """query($first: Int, $after: String) {
  feed(first: $first, after: $after) {
    edges { cursor score reasons node { title author { handle } } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
NOW = datetime.now(UTC)


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


async def ranked(gql, viewer, first: int = 100) -> list[dict]:
    data = await gql.data(FEED, {"first": first}, viewer=viewer)
    return data["feed"]["edges"]


def titles(edges) -> list[str]:
    return [e["node"]["title"] for e in edges]


@pytest.fixture
async def reader(db):
    user = await make_user(db, handle="reader")
    return user, Viewer.member(user.id)


@pytest.fixture
async def writer(db):
    return await make_user(db, handle="writer")


async def test_a_followed_tag_beats_an_otherwise_identical_item(db, gql, reader, writer) -> None:
    user, viewer = reader
    await make_content(db, writer, title="plain", tags=("misc",), at=hours_ago(2))
    await make_content(db, writer, title="python", tags=("python",), at=hours_ago(2))
    await set_preferences(db, user, weights={"python": 0.8})
    edges = await ranked(gql, viewer)
    assert titles(edges) == ["python", "plain"]
    assert "tag #python (+0.8)" in edges[0]["reasons"]
    assert edges[0]["score"] == pytest.approx(edges[1]["score"] + 0.8, abs=1e-3)


async def test_a_negative_weight_sinks_an_item(db, gql, reader, writer) -> None:
    user, viewer = reader
    await make_content(db, writer, title="java, fresh", tags=("java",), at=hours_ago(1))
    await make_content(db, writer, title="plain, older", tags=("misc",), at=hours_ago(20))
    assert titles(await ranked(gql, viewer)) == ["java, fresh", "plain, older"]
    await set_preferences(db, user, weights={"java": -0.9})
    edges = await ranked(gql, viewer)
    assert titles(edges) == ["plain, older", "java, fresh"], "preferences apply on the next request"
    assert "tag #java (-0.9)" in edges[1]["reasons"]


async def test_a_followed_author_rises(db, gql, reader) -> None:
    user, viewer = reader
    ada = await make_user(db, handle="ada")
    bob = await make_user(db, handle="bob")
    await make_content(db, bob, title="by bob, newer", at=hours_ago(1))
    await make_content(db, ada, title="by ada, older", at=hours_ago(10))
    await follow(db, user, ada)
    edges = await ranked(gql, viewer)
    assert titles(edges) == ["by ada, older", "by bob, newer"]
    assert edges[0]["reasons"][0] == "you follow @ada"


async def test_habits_learned_from_reactions_raise_their_tags(db, gql, reader, writer) -> None:
    user, viewer = reader
    for i in range(3):
        liked = await make_content(
            db, writer, title=f"old rust {i}", tags=("rust",), at=hours_ago(300 + i)
        )
        await react(db, user, liked, at=hours_ago(24))
    await make_content(db, writer, title="new go", tags=("go",), at=hours_ago(3))
    await make_content(db, writer, title="new rust", tags=("rust",), at=hours_ago(3))
    edges = await ranked(gql, viewer)
    assert titles(edges)[0] == "new rust"
    assert "you often react to #rust" in edges[0]["reasons"]
    affinity = await gql.data("{ tags { edges { node { name viewerAffinity } } } }", viewer=viewer)
    learned = {e["node"]["name"]: e["node"]["viewerAffinity"] for e in affinity["tags"]["edges"]}
    assert 0 < learned["rust"] < 1 and learned["go"] == 0.0


async def test_old_reactions_count_less_than_recent_ones(db, gql, reader, writer) -> None:
    user, viewer = reader
    for tag, age_days in (("recent", 1), ("ancient", 200)):
        liked = await make_content(db, writer, tags=(tag,), at=hours_ago(24 * age_days + 1))
        await react(db, user, liked, at=hours_ago(24 * age_days))
    data = await gql.data("{ tags { edges { node { name viewerAffinity } } } }", viewer=viewer)
    learned = {e["node"]["name"]: e["node"]["viewerAffinity"] for e in data["tags"]["edges"]}
    assert learned["recent"] > learned["ancient"] >= 0


async def test_muted_tags_and_authors_and_other_languages_never_appear(db, gql, reader) -> None:
    user, viewer = reader
    ada = await make_user(db, handle="ada")
    bob = await make_user(db, handle="bob")
    await make_content(db, ada, title="crypto", tags=("crypto", "python"), at=hours_ago(1))
    await make_content(db, bob, title="by bob", at=hours_ago(1))
    await make_content(db, ada, title="auf deutsch", language="de", at=hours_ago(1))
    await make_content(db, ada, title="kept", tags=("python",), at=hours_ago(50))
    await set_preferences(
        db,
        user,
        weights={"python": 1.0},
        muted_tags=("crypto",),
        muted_authors=(bob,),
        languages=("en",),
    )
    assert titles(await ranked(gql, viewer)) == ["kept"]
    await follow(db, user, bob)
    assert titles(await ranked(gql, viewer)) == ["kept"], "a mute wins over a follow"


async def test_freshness_then_popularity_break_ties(db, gql, reader, writer) -> None:
    _, viewer = reader
    fans = [await make_user(db) for _ in range(4)]
    await make_content(db, writer, title="older", at=hours_ago(30))
    await make_content(db, writer, title="newer", at=hours_ago(2))
    loved = await make_content(db, writer, title="older but loved", at=hours_ago(30))
    for fan in fans:
        await react(db, fan, loved)
    edges = await ranked(gql, viewer)
    assert titles(edges) == ["newer", "older but loved", "older"]
    assert "popular: 4 reactions" in edges[1]["reasons"]
    assert edges[0]["reasons"][-1] == "published 2 hours ago"


async def test_anonymous_viewers_get_popular_fresh_public_content(db, gql, writer) -> None:
    fan = await make_user(db)
    await make_content(db, writer, title="members only", visibility="MEMBERS", at=hours_ago(1))
    await make_content(db, writer, title="draft", status="DRAFT", at=hours_ago(1))
    liked = await make_content(db, writer, title="public, liked", at=hours_ago(5))
    await make_content(db, writer, title="public", at=hours_ago(5))
    await react(db, fan, liked)
    assert titles(await ranked(gql, None)) == ["public, liked", "public"]


async def test_own_content_and_drafts_stay_out_of_the_feed(db, gql, reader, writer) -> None:
    user, viewer = reader
    await make_content(db, user, title="mine", at=hours_ago(1))
    await make_content(db, writer, title="their draft", status="DRAFT", at=hours_ago(1))
    await make_content(db, writer, title="theirs", at=hours_ago(1))
    assert titles(await ranked(gql, viewer)) == ["theirs"]


async def test_very_old_content_ranks_without_errors(db, gql, reader, writer) -> None:
    """Freshness of years-old content underflows a float; it must count as 0, not fail."""
    _, viewer = reader
    fan = await make_user(db)
    ancient = await make_content(db, writer, title="ancient", at=hours_ago(24 * 365 * 5))
    await react(db, fan, ancient)
    edges = await ranked(gql, viewer)
    assert titles(edges) == ["ancient"]
    assert edges[0]["reasons"][-1].startswith("published 18")


async def test_a_first_page_without_cursors_ranks_as_one_that_starts_a_walk(
    db, gql, reader
) -> None:
    """Without cursors no walk is stored, and only the head of the candidates is found
    (db/reads/walks.py): the same items, in the same order, as a page that stores one."""
    user, viewer = reader
    ada, bob = await make_user(db, handle="ada"), await make_user(db, handle="bob")
    fans = [await make_user(db) for _ in range(3)]
    for i in range(14):
        item = await make_content(
            db,
            (ada, bob)[i % 2],
            title=f"item {i}",
            tags=(("python",), ("rust",), ("crypto",), ())[i % 4],
            language="de" if i == 5 else "en",
            at=hours_ago(3 * i + 1),
        )
        for fan in fans[: i % 4]:
            await react(db, fan, item)
    await follow(db, user, bob)
    await set_preferences(
        db, user, weights={"python": 0.6, "rust": -0.4}, muted_tags=("crypto",), languages=("en",)
    )
    plain = "query($first: Int) { feed(first: $first) { edges { node { title } } } }"
    for first in (1, 4, 100):
        walked = titles(await ranked(gql, viewer, first))
        data = await gql.data(plain, {"first": first}, viewer=viewer)
        assert titles(data["feed"]["edges"]) == walked, first
    assert len(walked) == 10, "14 items less 3 muted (crypto) and 1 in German"
