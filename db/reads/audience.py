"""Who among a live event's subscribers gets it, and which of them would get the same
answer: one statement per event, whatever the number of subscribers (docs/live-updates.md).

For a published content and the signed-in subscribers' ids it answers: the content's
author and tag names (for subscriptions filtered by tag), and per subscriber whether
they muted it, and (as asked) whether they reacted to it and their affinities to its
tags: what answers built from the registry's viewer-dependent content fields depend on."""

from typing import Any

import sqlalchemy as sa

from db.ranking import RankingWeights
from db.reads import scoring
from db.reads.compile import Compiled, compile_select
from db.reads.fields import (
    CONTENT_TAGS,
    CONTENTS,
    FOLLOWED_TAGS,
    MUTED_AUTHORS,
    MUTED_TAGS,
    REACTIONS,
    TAGS,
)
from db.reads.sql import BIGINT, BIGINTS, json_object, now, param


def audience_statement(weights: RankingWeights, *, reacted: bool, affinities: bool) -> Compiled:
    content_id, viewers = param("content", BIGINT), param("viewers", BIGINTS)
    item_tags = sa.select(CONTENT_TAGS.c.tag_id).where(CONTENT_TAGS.c.content_id == content_id)
    v = sa.func.unnest(viewers).table_valued("id").render_derived(name="v")
    author = sa.select(CONTENTS.c.author_id).where(CONTENTS.c.id == content_id).scalar_subquery()

    def theirs(user_id: Any) -> Any:
        return user_id == sa.any_(viewers)

    # Each fact is found for all the subscribers at once and joined to them: asked per
    # subscriber (a probe of each table for each of 5,000), it took ~40 ms an event.
    mt, ma = MUTED_TAGS.alias("mt"), MUTED_AUTHORS.alias("ma")
    muting = sa.union(
        sa.select(mt.c.user_id).where(theirs(mt.c.user_id), mt.c.tag_id.in_(item_tags)),
        sa.select(ma.c.user_id).where(theirs(ma.c.user_id), ma.c.author_id == author),
    ).subquery("muting")
    joined: Any = v.outerjoin(muting, muting.c.user_id == v.c.id)
    parts: list[Any] = [v.c.id, muting.c.user_id.is_not(None)]
    if reacted:
        r = REACTIONS.alias("r")
        reactors = (
            sa.select(r.c.user_id)
            .where(r.c.content_id == content_id, theirs(r.c.user_id))
            .subquery("reactors")
        )
        joined = joined.outerjoin(reactors, reactors.c.user_id == v.c.id)
        parts.append(reactors.c.user_id.is_not(None))
    if affinities:
        ft = FOLLOWED_TAGS.alias("ft")
        weighted = (
            sa.select(ft.c.user_id, sa.func.json_object_agg(ft.c.tag_id, ft.c.weight).label("of"))
            .where(theirs(ft.c.user_id), ft.c.tag_id.in_(item_tags))
            .group_by(ft.c.user_id)
            .subquery("weighted")
        )
        habits = scoring.habits(lambda r: theirs(r.c.user_id), now(), weights, name="habits")
        h = habits.alias("h")
        learned = (
            sa.select(h.c.user_id, sa.func.json_object_agg(h.c.tag_id, h.c.decayed).label("of"))
            .where(h.c.tag_id.in_(item_tags))
            .group_by(h.c.user_id)
            .subquery("learned")
        )
        joined = joined.outerjoin(weighted, weighted.c.user_id == v.c.id).outerjoin(
            learned, learned.c.user_id == v.c.id
        )
        parts += [weighted.c.of, learned.c.of]
    t = TAGS.alias("t")
    tags = (
        sa.select(sa.func.coalesce(sa.func.json_agg(t.c.name), sa.text("'[]'::json")))
        .where(t.c.id.in_(item_tags))
        .scalar_subquery()
    )
    viewers_json = (
        sa.select(
            sa.func.coalesce(
                sa.func.json_agg(sa.func.json_build_array(*parts)), sa.text("'[]'::json")
            )
        )
        .select_from(joined)
        .scalar_subquery()
    )
    answer = json_object([("author", author), ("tags", tags), ("viewers", viewers_json)])
    return compile_select(sa.select(sa.cast(answer, sa.Text)))
