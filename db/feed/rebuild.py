"""Rebuilding one viewer's stored feed from scratch: their candidates from indexed paths
(the newest of what they follow, of the tags they weight and their strongest habits, and
the recent and popular items everyone sees), each scored with the viewer's own part of
the formula, the best `feed_cap` kept. A first visit, a changed follow or preference, a
return after `inactive_days`, or (in the background) a reaction or an old feed rebuilds;
~100-200 ms for a viewer who follows hundreds (docs/performance.md)."""

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from db.feed.planning import plan_for_values
from db.ranking import RankingWeights
from db.reads import scoring
from db.reads.fields import (
    CONTENT_TAGS,
    CONTENTS,
    FOLLOWED_TAGS,
    FOLLOWS,
    MUTED_AUTHORS,
    MUTED_TAGS,
    PREFERENCES,
    USERS,
)
from db.reads.sql import BIGINT, TIMESTAMP, lit, param
from db.reads.walks import EMPTY_IDS, EMPTY_TEXTS, ENTRIES, ENTRY_COLUMNS, STATE
from db.session import Database
from db.tables import FeedHabit

HABITS = FeedHabit.__table__  # type: ignore[attr-defined]
# Habits kept per viewer for fan-out to score new items with; the top five also bring
# new items of their tags to the viewer.
KEPT_HABITS = 20
TOP_HABITS = 5
# The newest of each followed author a feed draws from.
PER_AUTHOR = 20


def _viewer() -> Any:
    return param("viewer", BIGINT)


def _now() -> Any:
    return param("now", TIMESTAMP)


def rebuild_statement(weights: RankingWeights) -> Any:
    """One statement that rescores the viewer's candidates and writes them, their
    habits and their feed's state."""
    w = weights
    viewer, now = _viewer(), _now()
    followed = (
        sa.select(FOLLOWS.c.followee_id.label("author_id"))
        .where(FOLLOWS.c.follower_id == viewer)
        .cte("followed")
    )
    weighted = (
        sa.select(FOLLOWED_TAGS.c.tag_id, FOLLOWED_TAGS.c.weight)
        .where(FOLLOWED_TAGS.c.user_id == viewer)
        .cte("weighted")
    )
    raw = scoring.habits(lambda r: r.c.user_id == viewer, now, w, name="raw_habits")
    habits = (
        sa.select(
            raw.c.tag_id,
            raw.c.decayed,
            sa.func.row_number().over(order_by=[raw.c.decayed.desc(), raw.c.tag_id]).label("rank"),
        )
        .where(~raw.c.tag_id.in_(sa.select(weighted.c.tag_id)))
        .cte("habits")
        .prefix_with("MATERIALIZED")
    )
    window = sa.func.make_interval(0, 0, 0, lit(w.window_days))

    def newest_of_tag(tags: Any) -> Any:
        ct = CONTENT_TAGS.alias()
        newest = (
            sa.select(ct.c.content_id)
            .where(ct.c.tag_id == tags.c.tag_id)
            .order_by(ct.c.content_id.desc())
            .limit(lit(w.per_source_limit))
            .lateral()
        )
        return sa.select(newest.c.content_id).select_from(tags.join(newest, sa.true()))

    recent_c, author_c, popular_c = CONTENTS.alias(), CONTENTS.alias(), CONTENTS.alias()
    per_author = (
        sa.select(author_c.c.id)
        .where(
            author_c.c.author_id == followed.c.author_id,
            author_c.c.status == lit("PUBLISHED"),
            author_c.c.listed_at <= now,
        )
        .order_by(author_c.c.listed_at.desc())
        .limit(lit(PER_AUTHOR))
        .lateral()
    )
    positive = sa.select(weighted.c.tag_id).where(weighted.c.weight > lit(0.0)).subquery()
    strongest = sa.select(habits.c.tag_id).where(habits.c.rank <= lit(TOP_HABITS)).subquery()
    candidates = sa.union(
        sa.select(recent_c.c.id)
        .where(
            recent_c.c.status == lit("PUBLISHED"),
            recent_c.c.listed_at <= now,
            recent_c.c.listed_at > now - window,
        )
        .order_by(recent_c.c.listed_at.desc())
        .limit(lit(w.per_source_limit * 2)),
        sa.select(per_author.c.id).select_from(followed.join(per_author, sa.true())),
        newest_of_tag(positive),
        newest_of_tag(strongest),
        sa.select(popular_c.c.id)
        .where(popular_c.c.status == lit("PUBLISHED"), popular_c.c.listed_at <= now)
        .order_by(popular_c.c.reaction_count.desc(), popular_c.c.id.desc())
        .limit(lit(w.per_source_limit)),
    ).cte("candidates")

    c = CONTENTS.alias("c")
    ct, wt = CONTENT_TAGS.alias("tw_ct"), weighted.alias("tw_w")
    tag_sum = (
        sa.select(sa.func.sum(wt.c.weight))
        .select_from(ct.join(wt, wt.c.tag_id == ct.c.tag_id))
        .where(ct.c.content_id == c.c.id)
        .scalar_subquery()
    )
    hct, h = CONTENT_TAGS.alias("hb_ct"), habits.alias("hb")
    best = (
        sa.select(h.c.tag_id, h.c.decayed)
        .select_from(hct.join(h, h.c.tag_id == hct.c.tag_id))
        .where(hct.c.content_id == c.c.id)
        .order_by(h.c.decayed.desc(), h.c.tag_id)
        .limit(1)
        .lateral("best")
    )
    is_followed = c.c.author_id.in_(sa.select(followed.c.author_id))
    affinity = scoring.personal_score(is_followed, tag_sum, best.c.decayed, w)
    tag_ids = sa.func.coalesce(
        sa.select(sa.func.array_agg(CONTENT_TAGS.c.tag_id))
        .where(CONTENT_TAGS.c.content_id == c.c.id)
        .scalar_subquery(),
        EMPTY_IDS,
    )
    mct, mt = CONTENT_TAGS.alias("m_ct"), MUTED_TAGS.alias("m_t")
    muted_tag = sa.exists(
        sa.select(lit(1))
        .select_from(mct.join(mt, mt.c.tag_id == mct.c.tag_id))
        .where(mct.c.content_id == c.c.id, mt.c.user_id == viewer)
    )
    ma = MUTED_AUTHORS.alias("m_a")
    muted_author = sa.exists(
        sa.select(lit(1))
        .select_from(ma)
        .where(ma.c.user_id == viewer, ma.c.author_id == c.c.author_id)
    )
    p = PREFERENCES.alias("p")
    languages = sa.func.coalesce(
        sa.select(p.c.languages).where(p.c.user_id == viewer).scalar_subquery(), EMPTY_TEXTS
    )
    approx = affinity + scoring.shared_score(c.c.reaction_count, c.c.published_at, w, now)
    scored = (
        sa.select(
            c.c.id.label("content_id"),
            c.c.author_id,
            c.c.published_at,
            c.c.language,
            tag_ids.label("tag_ids"),
            affinity.label("affinity"),
            c.c.reaction_count.label("reactions"),
            best.c.tag_id.label("habit_tag_id"),
            sa.func.coalesce(best.c.decayed, lit(0.0)).label("habit_decayed"),
        )
        .select_from(candidates.join(c, c.c.id == candidates.c.id).outerjoin(best, sa.true()))
        .where(
            c.c.status == lit("PUBLISHED"),
            c.c.visibility.in_([lit("PUBLIC"), lit("MEMBERS")]),
            c.c.author_id != viewer,
            ~muted_tag,
            ~muted_author,
            sa.or_(sa.func.cardinality(languages) == lit(0), c.c.language == sa.any_(languages)),
            affinity != lit(0.0),
        )
        .order_by(approx.desc(), c.c.id.desc())
        .limit(lit(w.feed_cap))
        .cte("scored")
        .prefix_with("MATERIALIZED")
    )
    columns = ENTRY_COLUMNS
    upsert = insert(ENTRIES).from_select(
        ["viewer_id", *columns], sa.select(viewer, *(scored.c[n] for n in columns))
    )
    upserted = upsert.on_conflict_do_update(
        index_elements=["viewer_id", "content_id"],
        set_={n: upsert.excluded[n] for n in columns[1:]},
    ).cte("upserted")
    removed = (
        sa.delete(ENTRIES)
        .where(
            ENTRIES.c.viewer_id == viewer, ~ENTRIES.c.content_id.in_(sa.select(scored.c.content_id))
        )
        .cte("removed")
    )
    kept_habits = sa.select(habits).where(habits.c.rank <= lit(KEPT_HABITS)).subquery()
    habit_upsert = insert(HABITS).from_select(
        ["viewer_id", "tag_id", "decayed", "rank"],
        sa.select(viewer, kept_habits.c.tag_id, kept_habits.c.decayed, kept_habits.c.rank),
    )
    habits_written = habit_upsert.on_conflict_do_update(
        index_elements=["viewer_id", "tag_id"],
        set_={"decayed": habit_upsert.excluded.decayed, "rank": habit_upsert.excluded.rank},
    ).cte("habits_written")
    habits_dropped = (
        sa.delete(HABITS)
        .where(HABITS.c.viewer_id == viewer, ~HABITS.c.tag_id.in_(sa.select(kept_habits.c.tag_id)))
        .cte("habits_dropped")
    )
    count = sa.select(sa.func.count()).select_from(scored).scalar_subquery()
    state = (
        sa.update(STATE)
        .where(STATE.c.viewer_id == viewer)
        .values(built_at=now, stale=False, entries=count, head_until=None)
        .cte("state")
    )
    return sa.select(count).add_cte(upserted, removed, habits_written, habits_dropped, state)


async def rebuild(db: Database, viewer_id: int, weights: RankingWeights) -> int:
    """Rebuilds the viewer's feed; returns how many candidates it keeps. The feed's
    state row is locked first, so a follow or preference change made meanwhile waits,
    then marks the feed stale again: it is never lost."""
    async with db.session() as session:
        connection = await plan_for_values(await session.connection())
        lock = (
            insert(STATE)
            .values(viewer_id=viewer_id)
            .on_conflict_do_update(index_elements=["viewer_id"], set_={"viewer_id": viewer_id})
        )
        await connection.execute(lock)
        values = {"viewer": viewer_id, "now": datetime.now(UTC)}
        kept = (await connection.execute(rebuild_statement(weights), values)).scalar_one()
        await session.commit()
    return int(kept)


async def viewers(db: Database, *, stored_only: bool) -> list[int]:
    """Every user, or (`stored_only`) those who have a stored feed, by id."""
    table = STATE.c.viewer_id if stored_only else USERS.c.id
    async with db.session() as session:
        rows = await (await session.connection()).execute(sa.select(table).order_by(table))
        return [int(row[0]) for row in rows]


# A bulk rebuild this large refreshes the feed tables' planner statistics when done.
ANALYZE_AFTER = 1000


async def rebuild_all(
    db: Database,
    viewer_ids: Sequence[int],
    weights: RankingWeights,
    *,
    concurrency: int = 2,
    progress: Callable[[str, int, int], None] | None = None,
    analyze_after: int = ANALYZE_AFTER,
) -> int:
    """Rebuilds each viewer's feed, `concurrency` at a time; how many candidates they
    keep in all."""
    gate = asyncio.Semaphore(concurrency)
    done = kept = 0

    async def one(viewer_id: int) -> None:
        nonlocal done, kept
        async with gate:
            kept += await rebuild(db, viewer_id, weights)
        done += 1
        if progress is not None:
            progress("feeds", done, len(viewer_ids))

    await asyncio.gather(*(one(v) for v in viewer_ids))
    if len(viewer_ids) >= analyze_after:
        # Autovacuum analyzes a table only after it changed by a tenth, on its own
        # schedule: until then first pages were planned on the old statistics, a
        # sequential scan of feed_entries (25 ms instead of 3 at 10,000 feeds).
        async with db.session() as session:
            connection = await session.connection()
            await connection.execute(sa.text("ANALYZE feed_entries, feed_state"))
            await session.commit()
    return kept
