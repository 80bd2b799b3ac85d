"""Feed heads (db/reads/walks.py `_head`): a first page without a walk stores which of
the viewer's stored candidates can reach its head for `head_minutes`, and the next ones
read only those. The page must be the one ranking every candidate gives, until the head
expires and whatever changes the candidates clears it."""

import asyncio
import dataclasses
import math
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from db.feed import jobs
from db.reads.walks import ENTRIES, JOBS, SHARED, STATE
from db.session import Database, StatementCounter, create_engine
from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from tests.conftest import WEIGHTS, GraphQLClient
from tests.factories import follow, make_content, make_user, react, set_preferences

FEED = """query($first: Int) { feed(first: $first) {
  edges { score node { title } } } }"""
PUBLISH = "mutation($id: ID!) { publishContent(id: $id) { status } }"
ARCHIVE = "mutation($id: ID!) { archiveContent(id: $id) { status } }"
FIRST = 5
# What binding asks a first page of FIRST to rank live: the page and the live margin.
HEAD = FIRST + WEIGHTS.live_margin
NOW = datetime.now(UTC)


async def _world(db):
    """A reader whose stored feed holds many more candidates than a head: items of
    every age, by authors they follow, with tags they weight differently and reactions
    in many numbers, so that ages reorder them as time passes."""
    reader = await make_user(db, handle="reader")
    authors = [await make_user(db, handle=f"author{i}") for i in range(3)]
    reactors = [await make_user(db, handle=f"fan{i}") for i in range(8)]
    for author in authors:
        await follow(db, reader, author)
    await set_preferences(db, reader, weights={"python": 0.1, "rust": 0.05, "go": -0.05})
    kinds = [("python",), ("rust",), ("go",), (), ("python", "rust")]
    items = []
    for i in range(150):
        at = NOW - timedelta(minutes=11 * i + i % 5)
        item = await make_content(db, authors[i % 3], title=f"item {i}", tags=kinds[i % 5], at=at)
        for fan in reactors[: i // 18]:  # more, the older: ages reorder them
            await react(db, fan, item)
        items.append(item)
    return reader, authors, items


async def _titles(gql, reader, first: int = FIRST) -> list[str]:
    data = await gql.data(FEED, {"first": first}, viewer=Viewer.member(reader.id))
    return [edge["node"]["title"] for edge in data["feed"]["edges"]]


async def _state(db, reader) -> dict:
    async with db.session() as session:
        row = (
            await session.exec(
                sa.select(STATE.c.head_ids, STATE.c.head_size, STATE.c.head_until).where(
                    STATE.c.viewer_id == reader.id
                )
            )
        ).one()
    return {"ids": row[0], "size": row[1], "until": row[2]}


async def _forget_head(db, reader) -> None:
    async with db.session() as session:
        await session.exec(
            sa.update(STATE).where(STATE.c.viewer_id == reader.id).values(head_until=None)
        )
        await session.commit()


async def test_a_head_gives_the_page_ranking_every_candidate_gives(db, gql) -> None:
    reader, _, _ = await _world(db)
    ranked_all = await _titles(gql, reader)  # builds the feed, ranks all, stores the head
    head = await _state(db, reader)
    async with db.session() as session:
        candidates = (
            await session.exec(sa.select(sa.func.count()).where(ENTRIES.c.viewer_id == reader.id))
        ).one()[0]
    assert head["size"] == HEAD and head["until"] > datetime.now(UTC)
    assert HEAD <= len(head["ids"]) < candidates, (len(head["ids"]), candidates)
    from_head = await _titles(gql, reader)
    assert from_head == ranked_all
    await _forget_head(db, reader)
    assert await _titles(gql, reader) == ranked_all
    # A longer page than the head was stored for ranks every candidate again.
    longer = await _titles(gql, reader, first=60)
    assert longer[:FIRST] == ranked_all
    assert (await _state(db, reader))["size"] == 60 + WEIGHTS.live_margin


def _score(affinity: float, reactions: int, published: datetime, at: datetime) -> float:
    w = WEIGHTS
    popularity = math.log1p(reactions) / math.log1p(w.popular_reference)
    age_hours = max((at - published).total_seconds(), 0.0) / 3600
    return (
        affinity
        + w.popularity * popularity
        + w.freshness * 0.5 ** (age_hours / w.fresh_half_life_hours)
    )


async def test_the_head_holds_every_candidate_that_can_reach_it_until_it_expires(db) -> None:
    # A day: long enough for ages to reorder the candidates at the head's edge.
    weights = dataclasses.replace(WEIGHTS, head_minutes=24 * 60.0)
    gql = GraphQLClient(db, weights=weights)
    reader, _, _ = await _world(db)
    await _titles(gql, reader)
    head = await _state(db, reader)
    async with db.session() as session:
        rows = (
            await session.exec(
                sa.select(
                    ENTRIES.c.content_id,
                    ENTRIES.c.affinity,
                    ENTRIES.c.reactions,
                    ENTRIES.c.published_at,
                ).where(ENTRIES.c.viewer_id == reader.id)
            )
        ).all()
    stored = set(head["ids"])
    lasts = head["until"] - datetime.now(UTC)
    assert timedelta(minutes=weights.head_minutes - 1) < lasts
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        at = datetime.now(UTC) + lasts * fraction
        best = sorted(rows, key=lambda r: (-_score(r[1], r[2], r[3], at), -r[0]))[:HEAD]
        assert {r[0] for r in best} <= stored, f"at {fraction} of the head's time"


async def test_what_changes_the_candidates_clears_the_head(db, gql) -> None:
    reader, authors, _ = await _world(db)
    await _titles(gql, reader)
    assert (await _state(db, reader))["until"] is not None
    draft = await make_content(
        db, authors[1], title="just out", status="DRAFT", tags=("python", "rust"), at=NOW
    )
    await gql.data(
        PUBLISH, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(authors[1].id)
    )
    assert (await _state(db, reader))["until"] is not None, "nothing inside the write"
    assert await jobs.run_pending(db, WEIGHTS) >= 1
    assert (await _state(db, reader))["until"] is None
    assert "just out" in await _titles(gql, reader)
    assert (await _state(db, reader))["until"] is not None
    await gql.data(
        ARCHIVE, {"id": encode_id("Content", draft.id)}, viewer=Viewer.member(authors[1].id)
    )
    assert await jobs.run_pending(db, WEIGHTS) >= 1
    assert (await _state(db, reader))["until"] is None
    assert "just out" not in await _titles(gql, reader)


async def test_a_head_is_not_stored_from_candidates_replaced_while_it_ranked(
    fresh_database_url,
) -> None:
    """A fan-out or rebuild that commits while a first page ranks clears the head after
    the page read the old candidates: that page must not store a head from them."""
    engine = create_engine(fresh_database_url)
    db = Database(engine)
    try:
        gql = GraphQLClient(db)
        reader, _, _ = await _world(db)
        await _titles(gql, reader)
        await _forget_head(db, reader)
        async with engine.connect() as blocker:
            transaction = await blocker.begin()
            await blocker.execute(
                sa.text("UPDATE feed_state SET entries = entries WHERE viewer_id = :id"),
                {"id": reader.id},
            )
            reading = asyncio.create_task(_titles(gql, reader))
            await asyncio.sleep(0.5)
            assert not reading.done(), "the page waits for the row the change holds"
            await transaction.commit()
            await reading
        assert (await _state(db, reader))["until"] is None
        await _titles(gql, reader)
        assert (await _state(db, reader))["until"] is not None
    finally:
        await engine.dispose()


TAGS = """query($first: Int) { feed(first: $first) {
  edges { node { title tags { name viewerAffinity } } } } }"""
LIVE_TAGS = "{ tags { edges { node { name viewerAffinity } } } }"


async def _affinities(gql, reader, query: str, variables: dict | None = None) -> dict:
    data = await gql.data(query, variables, viewer=Viewer.member(reader.id))
    if "feed" in data:
        tags = [t for e in data["feed"]["edges"] for t in e["node"]["tags"]]
    else:
        tags = [e["node"] for e in data["tags"]["edges"]]
    return {t["name"]: t["viewerAffinity"] for t in tags}


async def test_a_page_read_from_a_head_orders_tags_by_the_viewers_habits_now(db, gql) -> None:
    reader, authors, items = await _world(db)
    for item in items[:12]:
        if item.id % 2:
            await react(db, reader, item)  # habits of unweighted tags: learned affinity
    await _titles(gql, reader)
    assert (await _state(db, reader))["until"] is not None
    from_head = await _affinities(gql, reader, TAGS, {"first": 20})
    live = await _affinities(gql, reader, LIVE_TAGS)
    assert from_head and all(
        math.isclose(value, live[name], rel_tol=1e-6) for name, value in from_head.items()
    ), (from_head, live)
    # A reaction of the viewer's changes their habits: the head goes, the next page
    # orders its tags by the habits as they are now.
    loved = await make_content(db, authors[0], title="loved", tags=("zig",), at=NOW)
    assert await jobs.run_pending(db, WEIGHTS) >= 1
    await _titles(gql, reader)
    assert (await _state(db, reader))["until"] is not None
    await react(db, reader, loved)
    assert (await _state(db, reader))["until"] is None
    after = await _affinities(gql, reader, TAGS, {"first": 20})
    live = await _affinities(gql, reader, LIVE_TAGS)
    assert after["zig"] > 0 and math.isclose(after["zig"], live["zig"], rel_tol=1e-6)


async def test_a_page_with_a_head_is_one_lean_statement_and_a_cleared_one_costs_one_more(
    db, gql
) -> None:
    reader, _, _ = await _world(db)
    await _titles(gql, reader)  # ranks every candidate, stores the head

    async def counted() -> tuple[int, list[str]]:
        with StatementCounter(db) as counter:
            found = await _titles(gql, reader)
        return counter.count, found

    count, lean = await counted()
    assert count == 1
    compiled = [s for s in gql.executor.statements._compiled if s.roots]
    assert any(getattr(s.roots[0].source, "lean", False) for s in compiled)
    await _forget_head(db, reader)
    count, again = await counted()
    assert (count, again) == (2, lean), "the lean page finds no head, the full one stores it"
    assert (await counted())[0] == 1


async def test_a_lean_page_writes_what_reading_is_due_to_write(db, gql) -> None:
    """A lean statement only reads: the viewer's last read (to the hour) and the
    background rebuild of an old feed are written apart, when due."""
    reader, _, _ = await _world(db)
    await _titles(gql, reader)
    async with db.session() as session:
        await session.exec(sa.delete(JOBS))
        await session.exec(
            sa.update(STATE)
            .where(STATE.c.viewer_id == reader.id)
            .values(seen_at=NOW - timedelta(hours=2), built_at=NOW - timedelta(hours=7))
        )
        await session.commit()
    with StatementCounter(db) as counter:
        await _titles(gql, reader)
    assert counter.count == 2, "the lean page, then what it found due"
    async with db.session() as session:
        seen = (
            await session.exec(sa.select(STATE.c.seen_at).where(STATE.c.viewer_id == reader.id))
        ).one()[0]
        queued = (
            await session.exec(
                sa.select(JOBS.c.kind).where(JOBS.c.target == reader.id, JOBS.c.kind == "rebuild")
            )
        ).all()
    assert seen > NOW and len(queued) == 1
    with StatementCounter(db) as counter:
        await _titles(gql, reader)
    assert counter.count == 1, "nothing due any more"


async def test_a_lean_page_brings_shared_items_that_beat_the_heads_floor(db) -> None:
    """Of the shared list a lean page reads only the items listed at or above its head's
    floor: one that ranks between the viewer's own candidates must still come."""
    gql = GraphQLClient(db, weights=dataclasses.replace(WEIGHTS, live_margin=5))
    reader, author, stranger = [
        await make_user(db, handle=h) for h in ("reader", "author", "stranger")
    ]
    await follow(db, reader, author)
    for i in range(25):  # fresh: ~2.0 each
        await make_content(db, author, title=f"fresh {i}", at=NOW - timedelta(minutes=5 * i))
    for i in range(25):  # three days old: ~1.1 each
        await make_content(db, author, title=f"old {i}", at=NOW - timedelta(hours=72, minutes=i))
    await _titles(gql, reader, first=30)  # the head: 35 of the 50
    assert (await _state(db, reader))["size"] == 35
    popular = await make_content(db, stranger, title="everyone's", at=NOW)
    fans = [await make_user(db, handle=f"fan{i}") for i in range(8)]
    for fan in fans:
        await react(db, fan, popular)
    async with db.session() as session:
        await session.exec(sa.delete(SHARED))  # this minute's list, ranked again with it
        await session.commit()
    full = await _titles(gql, reader, first=30)  # no list stored: asked in full
    lean = await _titles(gql, reader, first=30)
    assert lean == full and full.index("everyone's") == 25, full
