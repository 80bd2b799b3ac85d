"""The stored feed (docs/ranking.md): what a viewer does shows on their next first page,
publications reach followers' feeds after their write commits, inactive viewers are
rebuilt on return, and a feed never holds more than its cap."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from db.feed import jobs
from db.ranking import RankingWeights
from db.reads.walks import ENTRIES, JOBS, STATE
from db.tables import Content
from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.conftest import WEIGHTS, GraphQLClient
from tests.factories import follow, make_content, make_user, set_preferences

FEED = """query($first: Int) { feed(first: $first) {
  edges { score reasons node { title author { handle } } } } }"""
PUBLISH = "mutation($id: ID!) { publishContent(id: $id) { status } }"
NOW = datetime.now(UTC)


async def edges(gql, user, first: int = 50) -> list[dict]:
    data = await gql.data(FEED, {"first": first}, viewer=Viewer.member(user.id))
    return data["feed"]["edges"]


def titles(found: list[dict]) -> list[str]:
    return [e["node"]["title"] for e in found]


async def publish(gql, author, title: str, **fields) -> int:
    draft = await make_content(gql.db, author, title=title, status="DRAFT", at=NOW, **fields)
    await gql.data(PUBLISH, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(author.id))
    assert draft.id is not None
    return draft.id


async def stored(db, viewer_id: int) -> dict[int, float]:
    """The viewer's stored candidates: content id -> affinity."""
    async with db.session() as session:
        rows = await session.exec(
            sa.select(ENTRIES.c.content_id, ENTRIES.c.affinity).where(
                ENTRIES.c.viewer_id == viewer_id
            )
        )
        return {int(c): float(a) for c, a in rows.all()}


async def test_a_publication_reaches_a_followers_stored_feed_after_it_commits(db, gql) -> None:
    reader, author = await make_user(db), await make_user(db, handle="prolific")
    await follow(db, reader, author)
    assert titles(await edges(gql, reader)) == []
    content_id = await publish(gql, author, "fresh news")
    assert content_id not in await stored(db, reader.id), "nothing happens inside the write"
    assert await jobs.run_pending(db, WEIGHTS) >= 1
    assert (await stored(db, reader.id))[content_id] == WEIGHTS.followed_author
    (edge,) = await edges(gql, reader)
    assert edge["node"]["title"] == "fresh news"
    assert edge["reasons"][0] == "you follow @prolific"
    assert edge["score"] > WEIGHTS.followed_author, "scored with the follow, not as a stranger's"


async def test_a_rolled_back_publication_fans_out_nothing(db, gql, monkeypatch) -> None:
    from resolvers import content_writes

    reader, author = await make_user(db), await make_user(db)
    await follow(db, reader, author)
    await edges(gql, reader)
    draft = await make_content(db, author, status="DRAFT", at=NOW)

    async def fail(session, content):
        raise RuntimeError("the publication's transaction fails after its write")

    monkeypatch.setattr(content_writes.writes, "announce_published", fail)
    result = await gql.execute(
        PUBLISH, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(author.id)
    )
    assert result.errors[0].extensions["code"] == "INTERNAL_SERVER_ERROR"
    async with db.session() as session:
        waiting = (await session.exec(sa.select(sa.func.count()).select_from(JOBS))).one()
    assert waiting == (0,)
    assert await jobs.run_pending(db, WEIGHTS) == 0
    assert await stored(db, reader.id) == {}


async def test_a_mute_removes_an_item_on_the_next_request(db, gql) -> None:
    reader, author = await make_user(db), await make_user(db)
    await follow(db, reader, author)
    await make_content(db, author, title="about crypto", tags=("crypto",), at=NOW)
    await make_content(db, author, title="about go", tags=("go",), at=NOW - timedelta(hours=1))
    assert titles(await edges(gql, reader)) == ["about crypto", "about go"]
    await set_preferences(db, reader, muted_tags=("crypto",))
    assert titles(await edges(gql, reader)) == ["about go"]


async def test_a_new_follow_brings_the_followees_recent_items_on_the_next_request(db, gql) -> None:
    reader, ada, bob = await make_user(db), await make_user(db, handle="ada"), await make_user(db)
    await make_content(db, bob, title="by bob", at=NOW - timedelta(hours=1))
    await make_content(db, ada, title="by ada", at=NOW - timedelta(hours=30))
    assert titles(await edges(gql, reader)) == ["by bob", "by ada"]
    await GraphQLClient(db).data(
        'mutation { follow(handle: "ada") { viewerFollows } }', viewer=Viewer.member(reader.id)
    )
    found = await edges(gql, reader)
    assert titles(found) == ["by ada", "by bob"]
    assert found[0]["reasons"][0] == "you follow @ada"


async def test_an_inactive_viewer_is_not_fanned_out_to_and_is_rebuilt_on_return(db, gql) -> None:
    reader, author = await make_user(db), await make_user(db, handle="writer")
    await follow(db, reader, author)
    await make_content(db, author, title="before", at=NOW - timedelta(days=16))
    await edges(gql, reader)
    assert await stored(db, reader.id), "a visit stores the feed"
    async with db.session() as session:
        await session.exec(
            sa.update(STATE)
            .where(STATE.c.viewer_id == reader.id)
            .values(seen_at=NOW - timedelta(days=15))
        )
        await session.commit()
    assert await jobs.prune(db, WEIGHTS) >= 1
    assert await stored(db, reader.id) == {}, "an inactive viewer's feed takes no space"
    content_id = await publish(gql, author, "while away")
    await jobs.run_pending(db, WEIGHTS)
    assert content_id not in await stored(db, reader.id), "inactive viewers are skipped"
    found = await edges(gql, reader)
    assert titles(found) == ["while away", "before"]
    assert found[0]["reasons"][0] == "you follow @writer"
    assert content_id in await stored(db, reader.id), "their feed was rebuilt on return"


async def test_tag_weights_and_habits_score_what_fan_out_stores(db, gql) -> None:
    reader, stranger = await make_user(db), await make_user(db)
    await set_preferences(db, reader, weights={"python": 0.8, "java": -0.5})
    await edges(gql, reader)
    liked = await publish(gql, stranger, "python news", tags=("python",))
    disliked = await publish(gql, stranger, "java news", tags=("java",))
    await jobs.run_pending(db, WEIGHTS)
    affinities = await stored(db, reader.id)
    assert affinities[liked] == pytest.approx(WEIGHTS.tag * 0.8)
    assert affinities[disliked] == pytest.approx(WEIGHTS.tag * -0.5), "stored, to sink it"
    assert titles(await edges(gql, reader)) == ["python news", "java news"]


async def test_a_feed_never_holds_more_than_its_cap(db) -> None:
    capped = RankingWeights(feed_cap=10)
    gql = GraphQLClient(db, weights=capped)
    reader, author = await make_user(db), await make_user(db)
    await follow(db, reader, author)
    for i in range(15):
        await make_content(db, author, title=f"old {i}", at=NOW - timedelta(days=2, minutes=i))
    await edges(gql, reader)
    assert len(await stored(db, reader.id)) == 10
    for i in range(6):
        await publish(gql, author, f"new {i}")
    await jobs.run_pending(db, capped)
    kept = await stored(db, reader.id)
    assert 9 <= len(kept) <= 10, "over the cap, a feed keeps its best 90% of it"
    found = titles(await edges(gql, reader, first=20))
    assert set(found[:6]) == {f"new {i}" for i in range(6)}, "the newest kept, the oldest trimmed"


async def test_a_bulk_rebuild_refreshes_the_feed_tables_statistics(db) -> None:
    # Planned on the statistics from before a bulk build, first pages scanned
    # feed_entries whole (25 ms instead of 3 at 10,000 feeds).
    from db.feed.rebuild import rebuild_all

    viewers = [(await make_user(db)).id for _ in range(3)]

    async def analyzed() -> int:
        # Manual ANALYZEs only: autovacuum's count separately (autoanalyze_count).
        await db.fetch("SELECT pg_stat_clear_snapshot()")
        (row,) = await db.fetch(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'feed_entries'"
        )
        return int(row[0])

    before = await analyzed()
    await rebuild_all(db, viewers, WEIGHTS, analyze_after=len(viewers) + 1)
    assert await analyzed() == before, "a rebuild smaller than the threshold leaves them"
    await rebuild_all(db, viewers, WEIGHTS, analyze_after=len(viewers))
    assert await analyzed() == before + 1


async def test_a_reaction_rebuilds_the_reactors_feed_in_the_background(db, gql) -> None:
    reader, author = await make_user(db), await make_user(db)
    await edges(gql, reader)
    liked = await make_content(db, author, tags=("rust",), at=NOW - timedelta(days=40))
    await gql.data(
        "mutation($id: ID!) { react(contentId: $id) { viewerHasReacted } }",
        {"id": encode_id("Content", liked.id)},
        viewer=Viewer.member(reader.id),
    )
    await make_content(db, author, title="new rust", tags=("rust",), at=NOW)
    assert await jobs.run_pending(db, WEIGHTS) >= 1
    found = await edges(gql, reader)
    assert found[0]["node"]["title"] == "new rust"
    assert "you often react to #rust" in found[0]["reasons"]


async def test_a_commit_wakes_the_feed_worker_without_waiting_for_its_poll(
    fresh_database_url,
) -> None:
    from db.feed.rebuild import rebuild
    from db.session import Database, create_engine
    from gateway.feed_worker import FeedWorker

    database = Database(create_engine(fresh_database_url))
    # A poll that never comes within the test: only the commit can wake the worker.
    worker = FeedWorker(database, WEIGHTS, poll=3600)
    try:
        reader, author = await make_user(database), await make_user(database)
        await follow(database, reader, author)
        await rebuild(database, reader.id, WEIGHTS)
        worker.start()
        # The worker's first round ran; it now waits for a commit of this process.
        await asyncio.sleep(0.2)
        draft = await make_content(database, author, status="DRAFT", at=NOW)
        async with database.session() as session:
            await session.exec(
                sa.update(Content)
                .where(Content.id == draft.id)
                .values(status="PUBLISHED", published_at=NOW)
            )
            await session.commit()
        async with asyncio.timeout(10):
            while draft.id not in await stored(database, reader.id):  # noqa: ASYNC110 - polls the database
                await asyncio.sleep(0.05)
    finally:
        await worker.stop()
        await database.dispose()
