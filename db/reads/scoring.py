"""The ranking formula in SQL, written once for every statement that scores: habits
(decayed reactions per tag), learned and tag affinity, popularity, freshness, and how
they add up. docs/ranking.md has the formulas and a worked example."""

import math
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from db.ranking import RankingWeights
from db.reads.sql import epoch, lit
from db.tables import ContentTag, Reaction

# Reactions older than this many half-lives weigh under 0.4% and are not read.
HABIT_HORIZON_HALF_LIVES = 8
SECONDS_A_DAY = 86400.0


def decay(age_seconds: ColumnElement[Any], half_life_seconds: float) -> ColumnElement[Any]:
    """0.5 ^ (age / half-life), capped where Postgres would raise on underflow: past 200
    half-lives it is 0 to any precision that matters."""
    halvings = sa.func.least(
        sa.func.greatest(age_seconds, lit(0.0)) / lit(half_life_seconds), lit(200.0)
    )
    return sa.func.power(lit(0.5), halvings, type_=sa.Float)


def seconds(at: Any) -> ColumnElement[Any]:
    """The instant `at` (a parameter) in seconds since 1970, computed once per statement:
    an uncorrelated subquery runs once, where date_part of a parameter inside a row's
    expression is computed again for every row (~500 of them in a first page)."""
    return sa.select(epoch(at)).scalar_subquery()


def habits(
    who: Callable[[Any], ColumnElement[bool]],
    now: Any,
    weights: RankingWeights,
    *,
    name: str = "habits",
) -> CTE:
    """(user_id, tag_id, decayed): for each user whose reactions `who(reactions)` admits,
    their reactions to content carrying each tag, each counting 0.5 ^ (age / half-life)."""
    r = Reaction.__table__.alias("hr")  # type: ignore[attr-defined]
    ct = ContentTag.__table__.alias("hct")  # type: ignore[attr-defined]
    half_life = weights.habit_half_life_days * SECONDS_A_DAY
    decayed = sa.func.sum(decay(seconds(now) - epoch(r.c.created_at), half_life))
    horizon = sa.func.make_interval(0, 0, 0, 0, 0, 0, lit(half_life * HABIT_HORIZON_HALF_LIVES))
    return (
        sa.select(r.c.user_id, ct.c.tag_id, decayed.label("decayed"))
        .select_from(r.join(ct, ct.c.content_id == r.c.content_id))
        .where(who(r), r.c.created_at <= now, r.c.created_at > now - horizon)
        .group_by(r.c.user_id, ct.c.tag_id)
        .cte(name)
    )


def learned(decayed: ColumnElement[Any], weights: RankingWeights) -> ColumnElement[Any]:
    """decayed / (decayed + saturation), in [0, 1); 0 without reactions."""
    return sa.case(
        (decayed > lit(0.0), decayed / (decayed + lit(float(weights.habit_saturation)))),
        else_=lit(0.0),
    )


def tag_affinity(
    weight: ColumnElement[Any], decayed: ColumnElement[Any], weights: RankingWeights
) -> ColumnElement[Any]:
    """A tag's affinity in [-1, 1]: the explicit weight when there is one, else learned."""
    return sa.func.coalesce(weight, learned(sa.func.coalesce(decayed, lit(0.0)), weights))


def popularity(reactions: Any, weights: RankingWeights) -> ColumnElement[Any]:
    """ln(1 + reactions) / ln(1 + popular_reference): the reference count scores 1.0.
    In double precision: `1.0 + reactions` would be numeric, whose ln costs ~2 us a row,
    which was a third of a signed-in first page's time in Postgres (~450 rows scored)."""
    as_float = sa.cast(reactions, sa.Float)
    return sa.func.ln(lit(1.0) + as_float, type_=sa.Float) / lit(
        math.log1p(weights.popular_reference)
    )


def freshness(published_at: Any, weights: RankingWeights, at: Any) -> ColumnElement[Any]:
    """0.5 ^ (age in hours / fresh_half_life_hours), at the instant `at`."""
    return decay(seconds(at) - epoch(published_at), weights.fresh_half_life_hours * 3600.0)


def shared_score(
    reactions: Any, published_at: Any, weights: RankingWeights, at: Any
) -> ColumnElement[Any]:
    """The part of a score every viewer shares: popularity and freshness, weighted."""
    return lit(weights.popularity) * popularity(reactions, weights) + lit(
        weights.freshness
    ) * freshness(published_at, weights, at)


def personal_score(
    followed: Any, tag_sum: Any, habit_decayed: Any, weights: RankingWeights
) -> ColumnElement[Any]:
    """The part that is the viewer's own: a followed author, the sum of their weights of
    the item's tags, and the strongest learned affinity among its other tags."""
    return (
        sa.case((followed, lit(weights.followed_author)), else_=lit(0.0))
        + lit(weights.tag) * sa.func.coalesce(tag_sum, lit(0.0))
        + lit(weights.habit) * learned(sa.func.coalesce(habit_decayed, lit(0.0)), weights)
    )
