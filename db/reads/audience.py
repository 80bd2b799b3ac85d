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
from db.reads.sql import BIGINT, BIGINTS, json_object, lit, now, param


def audience_statement(weights: RankingWeights, *, reacted: bool, affinities: bool) -> Compiled:
    content_id, viewers = param("content", BIGINT), param("viewers", BIGINTS)
    item_tags = sa.select(CONTENT_TAGS.c.tag_id).where(CONTENT_TAGS.c.content_id == content_id)
    v = sa.func.unnest(viewers).table_valued("id").render_derived(name="v")
    mct, mt, ma = CONTENT_TAGS.alias("mct"), MUTED_TAGS.alias("mt"), MUTED_AUTHORS.alias("ma")
    author = sa.select(CONTENTS.c.author_id).where(CONTENTS.c.id == content_id).scalar_subquery()
    muted = sa.or_(
        sa.exists(
            sa.select(lit(1))
            .select_from(mct.join(mt, mt.c.tag_id == mct.c.tag_id))
            .where(mct.c.content_id == content_id, mt.c.user_id == v.c.id)
        ),
        sa.exists(
            sa.select(lit(1))
            .select_from(ma)
            .where(ma.c.user_id == v.c.id, ma.c.author_id == author)
        ),
    )
    parts: list[Any] = [v.c.id, muted]
    if reacted:
        r = REACTIONS.alias("r")
        parts.append(
            sa.exists(
                sa.select(lit(1))
                .select_from(r)
                .where(r.c.user_id == v.c.id, r.c.content_id == content_id)
            )
        )
    if affinities:
        ft = FOLLOWED_TAGS.alias("ft")
        parts.append(
            sa.select(sa.func.json_object_agg(ft.c.tag_id, ft.c.weight))
            .where(ft.c.user_id == v.c.id, ft.c.tag_id.in_(item_tags))
            .scalar_subquery()
        )
        habits = scoring.habits(
            lambda r: r.c.user_id == sa.any_(viewers), now(), weights, name="habits"
        )
        h = habits.alias("h")
        parts.append(
            sa.select(sa.func.json_object_agg(h.c.tag_id, h.c.decayed))
            .where(h.c.user_id == v.c.id, h.c.tag_id.in_(item_tags))
            .scalar_subquery()
        )
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
        .select_from(v)
        .scalar_subquery()
    )
    answer = json_object([("author", author), ("tags", tags), ("viewers", viewers_json)])
    return compile_select(sa.select(sa.cast(answer, sa.Text)))
