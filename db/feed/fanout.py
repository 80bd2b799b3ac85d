"""A publication reaching the stored feeds it belongs in, after its write committed: the
author's followers and the viewers who weight one of its tags (either way: a negative
weight stores it too, to sink it) or have it among their strongest habits, who have read
their feed within `inactive_days`. Each gets it scored with their own part of the
formula; feeds over their cap are trimmed to 90% of it. Inactive viewers get nothing:
their feed is rebuilt when they return."""

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from db.feed.planning import plan_for_values
from db.feed.rebuild import HABITS, TOP_HABITS
from db.ranking import RankingWeights
from db.reads import scoring
from db.reads.fields import CONTENT_TAGS, CONTENTS, FOLLOWED_TAGS, FOLLOWS
from db.reads.sql import BIGINT, TIMESTAMP, lit, param
from db.reads.walks import EMPTY_IDS, ENTRIES, ENTRY_COLUMNS, STATE
from db.session import Database

# A feed over its cap is trimmed to this share of it, so trimming happens once per
# tenth of the cap new items rather than at every one.
TRIM_TO = 0.9


def publish_statement(weights: RankingWeights) -> Any:
    w = weights
    content_id, now, active_since = (
        param("content", BIGINT),
        param("now", TIMESTAMP),
        param("active_since", TIMESTAMP),
    )
    c = CONTENTS.alias("item_c")
    tag_ids = sa.func.coalesce(
        sa.select(sa.func.array_agg(CONTENT_TAGS.c.tag_id))
        .where(CONTENT_TAGS.c.content_id == c.c.id)
        .scalar_subquery(),
        EMPTY_IDS,
    )
    item = (
        sa.select(
            c.c.id,
            c.c.author_id,
            c.c.published_at,
            c.c.language,
            tag_ids.label("tag_ids"),
            c.c.reaction_count,
        )
        .where(
            c.c.id == content_id, c.c.status == lit("PUBLISHED"), c.c.visibility != lit("PRIVATE")
        )
        .cte("item")
    )
    targets = sa.union(
        sa.select(FOLLOWS.c.follower_id.label("viewer_id"))
        .select_from(item)
        .where(FOLLOWS.c.followee_id == item.c.author_id),
        sa.select(FOLLOWED_TAGS.c.user_id)
        .select_from(item)
        .where(FOLLOWED_TAGS.c.tag_id == sa.any_(item.c.tag_ids)),
        sa.select(HABITS.c.viewer_id)
        .select_from(item)
        .where(HABITS.c.rank <= lit(TOP_HABITS), HABITS.c.tag_id == sa.any_(item.c.tag_ids)),
    ).subquery("targets")
    active = (
        sa.select(targets.c.viewer_id)
        .select_from(targets.join(STATE, STATE.c.viewer_id == targets.c.viewer_id))
        .where(STATE.c.built_at.is_not(None), STATE.c.seen_at > active_since)
        .subquery("active")
    )
    ft = FOLLOWED_TAGS.alias("ft")
    tag_sum = (
        sa.select(sa.func.sum(ft.c.weight))
        .where(ft.c.user_id == active.c.viewer_id, ft.c.tag_id == sa.any_(item.c.tag_ids))
        .scalar_subquery()
    )
    h, wt = HABITS.alias("h"), FOLLOWED_TAGS.alias("wt")
    best = (
        sa.select(h.c.tag_id, h.c.decayed)
        .where(
            h.c.viewer_id == active.c.viewer_id,
            h.c.tag_id == sa.any_(item.c.tag_ids),
            ~sa.exists(
                sa.select(lit(1))
                .select_from(wt)
                .where(wt.c.user_id == h.c.viewer_id, wt.c.tag_id == h.c.tag_id)
            ),
        )
        .order_by(h.c.decayed.desc(), h.c.tag_id)
        .limit(1)
        .lateral("best")
    )
    f = FOLLOWS.alias("f")
    followed = sa.exists(
        sa.select(lit(1))
        .select_from(f)
        .where(f.c.follower_id == active.c.viewer_id, f.c.followee_id == item.c.author_id)
    )
    affinity = scoring.personal_score(followed, tag_sum, best.c.decayed, w)
    scored = (
        sa.select(
            active.c.viewer_id,
            item.c.id.label("content_id"),
            item.c.author_id,
            item.c.published_at,
            item.c.language,
            item.c.tag_ids,
            affinity.label("affinity"),
            item.c.reaction_count.label("reactions"),
            best.c.tag_id.label("habit_tag_id"),
            sa.func.coalesce(best.c.decayed, lit(0.0)).label("habit_decayed"),
        )
        .select_from(active.join(item, sa.true()).outerjoin(best, sa.true()))
        .where(active.c.viewer_id != item.c.author_id)
        .cte("scored")
    )
    columns = ["viewer_id", *ENTRY_COLUMNS]
    upsert = insert(ENTRIES).from_select(
        columns, sa.select(*(scored.c[n] for n in columns)).where(scored.c.affinity != lit(0.0))
    )
    stored = (
        upsert.on_conflict_do_update(
            index_elements=["viewer_id", "content_id"],
            set_={n: upsert.excluded[n] for n in columns[2:]},
        )
        .returning(ENTRIES.c.viewer_id, sa.literal_column("xmax = 0").label("added"))
        .cte("stored")
    )
    # Every feed it reached, added to or refreshed, has its head ranked again.
    counted = (
        sa.update(STATE)
        .where(STATE.c.viewer_id == stored.c.viewer_id)
        .values(
            entries=STATE.c.entries + sa.case((stored.c.added, lit(1)), else_=lit(0)),
            head_until=None,
        )
        .cte("counted")
    )
    # Copies already stored elsewhere (viewers it reached by a tag it no longer has)
    # learn its current tags and language: read-time filters use them.
    refreshed = (
        sa.update(ENTRIES)
        .where(
            ENTRIES.c.content_id == item.c.id,
            ~ENTRIES.c.viewer_id.in_(sa.select(stored.c.viewer_id)),
        )
        .values(tag_ids=item.c.tag_ids, language=item.c.language)
        .returning(ENTRIES.c.viewer_id)
        .cte("refreshed")
    )
    # Heads were filtered with the old tags and language.
    unheaded = (
        sa.update(STATE)
        .where(STATE.c.viewer_id.in_(sa.select(refreshed.c.viewer_id)))
        .values(head_until=None)
        .cte("unheaded")
    )
    del now
    return sa.select(sa.func.count()).select_from(stored).add_cte(counted, refreshed, unheaded)


async def publish(db: Database, content_id: int, weights: RankingWeights) -> int:
    """Stores the publication in the feeds it belongs in; how many it reached."""
    now = datetime.now(UTC)
    async with db.session() as session:
        connection = await plan_for_values(await session.connection())
        values = {
            "content": content_id,
            "active_since": now - timedelta(days=weights.inactive_days),
        }
        reached = (await connection.execute(publish_statement(weights), values)).scalar_one()
        await trim(connection, weights, now)
        await session.commit()
    return int(reached)


async def retract(db: Database, content_id: int) -> int:
    """Takes content that is no longer published (or no longer for members) out of
    every stored feed."""
    removed = (
        sa.delete(ENTRIES)
        .where(ENTRIES.c.content_id == content_id)
        .returning(ENTRIES.c.viewer_id)
        .cte("removed")
    )
    counted = (
        sa.update(STATE)
        .where(STATE.c.viewer_id == removed.c.viewer_id)
        .values(entries=sa.func.greatest(STATE.c.entries - 1, lit(0)), head_until=None)
        .returning(STATE.c.viewer_id)
    )
    async with db.session() as session:
        connection = await session.connection()
        result = await connection.execute(counted.add_cte(removed))
        gone = len(result.all())
        await session.commit()
    return gone


async def trim(connection: Any, weights: RankingWeights, now: datetime) -> None:
    """Feeds over their cap keep their best TRIM_TO of it (by the score they were
    stored with, at `now`)."""
    keep = int(weights.feed_cap * TRIM_TO)
    over = sa.select(STATE.c.viewer_id).where(STATE.c.entries > lit(weights.feed_cap)).cte("over")
    score = ENTRIES.c.affinity + scoring.shared_score(
        ENTRIES.c.reactions, ENTRIES.c.published_at, weights, param("now", TIMESTAMP)
    )
    ranked = (
        sa.select(
            ENTRIES.c.viewer_id,
            ENTRIES.c.content_id,
            sa.func.row_number()
            .over(
                partition_by=ENTRIES.c.viewer_id,
                order_by=[score.desc(), ENTRIES.c.content_id.desc()],
            )
            .label("place"),
        )
        .where(ENTRIES.c.viewer_id.in_(sa.select(over.c.viewer_id)))
        .cte("ranked")
    )
    e = ENTRIES.alias("e")
    dropped = (
        sa.delete(e)
        .where(
            e.c.viewer_id == ranked.c.viewer_id,
            e.c.content_id == ranked.c.content_id,
            ranked.c.place > lit(keep),
        )
        .cte("dropped")
    )
    counted = (
        sa.update(STATE)
        .where(STATE.c.viewer_id.in_(sa.select(over.c.viewer_id)))
        .values(entries=lit(keep), head_until=None)
    )
    await connection.execute(counted.add_cte(over, ranked, dropped), {"now": now})
