"""The ranked feed in one statement: indexed candidates, the viewer's signals, filters
and the score, all evaluated in Postgres."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.queries.access import ContentAccess, access_clause
from db.tables import Content, ContentTag, MutedAuthor, MutedTag, Preferences


@dataclass(frozen=True, slots=True)
class FeedWeights:
    """The ranking settings as the query needs them (resolvers/ranking.py owns them)."""

    followed_author: float
    tag: float
    habit: float
    popularity: float
    freshness: float
    fresh_half_life_hours: float
    habit_half_life_days: float
    habit_saturation: float
    popular_reference: int
    search_affinity: float
    window_days: int
    per_source_limit: int
    limit: int


@dataclass(frozen=True, slots=True)
class RankedRow:
    content_id: int
    score: float
    reactions: int
    published_at: datetime
    followed_author: str | None
    tag_weights: dict[str, float]
    habit_tag: str | None
    habit_decayed: float


# The viewer's signals. :viewer_id is NULL for anonymous viewers, which leaves every
# signal empty.
_SIGNALS = """
WITH followed_authors AS (
  SELECT f.followee_id AS author_id, u.handle
  FROM follows f JOIN users u ON u.id = f.followee_id
  WHERE f.follower_id = :viewer_id
), weighted_tags AS (
  SELECT ft.tag_id, ft.weight, t.name
  FROM followed_tags ft JOIN tags t ON t.id = ft.tag_id
  WHERE ft.user_id = :viewer_id
), habits AS MATERIALIZED (
  SELECT ct.tag_id,
         sum(power(0.5, extract(epoch FROM (:now - r.created_at)) / 86400.0 / :habit_half_life)) AS decayed
  FROM reactions r JOIN content_tags ct ON ct.content_id = r.content_id
  WHERE r.user_id = :viewer_id
    AND r.created_at <= :now
    AND r.created_at > :now - make_interval(days => (:habit_half_life * 8)::int)
    AND ct.tag_id NOT IN (SELECT tag_id FROM weighted_tags)
  GROUP BY ct.tag_id
),"""

# Feed candidates come only from indexed paths: the newest published content, the newest
# of each followed author and weighted tag, the newest of the viewer's habit tags, and
# the most reacted-to.
FEED_CANDIDATES = """
candidates AS (
  (SELECT id FROM contents
   WHERE status = 'PUBLISHED' AND listed_at <= :now AND listed_at > :window_start
   ORDER BY listed_at DESC LIMIT :per_source * 2)
  UNION
  (SELECT c.id FROM followed_authors fa CROSS JOIN LATERAL (
     SELECT id FROM contents
     WHERE author_id = fa.author_id AND status = 'PUBLISHED' AND listed_at <= :now
     ORDER BY listed_at DESC LIMIT 20) c)
  UNION
  (SELECT x.content_id FROM weighted_tags wt CROSS JOIN LATERAL (
     SELECT content_id FROM content_tags WHERE tag_id = wt.tag_id
     ORDER BY content_id DESC LIMIT :per_source) x
   WHERE wt.weight > 0)
  UNION
  (SELECT x.content_id FROM (SELECT tag_id FROM habits ORDER BY decayed DESC LIMIT 5) h
   CROSS JOIN LATERAL (
     SELECT content_id FROM content_tags WHERE tag_id = h.tag_id
     ORDER BY content_id DESC LIMIT :per_source) x)
  UNION
  (SELECT id FROM contents WHERE status = 'PUBLISHED' AND listed_at <= :now
   ORDER BY reaction_count DESC, id DESC LIMIT :per_source)
)"""

# Search candidates: the newest :per_source * 8 published matches of the query. The
# query is parsed with each language's configuration (gateway_search_tsquery, migration
# 0003), so stemmed words match in each. For a rare term Postgres reads the GIN index and
# sorts the few matches; for a term in a quarter of all content it walks the newest-first
# index and stops early, instead of ranking hundreds of thousands of rows. Both need the
# planner to see the query: search_query is inlined (NOT MATERIALIZED, it is referenced
# twice) and the plan is custom (planner_settings).
SEARCH_TSQUERY = "gateway_search_tsquery(:query)"
SEARCH_CANDIDATES = f"""
search_query AS NOT MATERIALIZED (SELECT {SEARCH_TSQUERY} AS q),
matches AS (
  SELECT c.id, c.search_vector
  FROM contents c, search_query sq
  WHERE c.search_vector @@ sq.q AND c.status = 'PUBLISHED' AND c.listed_at <= :now
  ORDER BY c.listed_at DESC, c.id DESC
  LIMIT :per_source * 8
), candidates AS (
  SELECT m.id, ts_rank_cd(m.search_vector, sq.q, 32) AS relevance
  FROM matches m, search_query sq
)"""

# Per candidate: the signals that apply to it.
_FACTORS = """
SELECT k.id,
       fa.handle AS followed_handle,
       coalesce(tw.weight_sum, 0) AS tag_sum,
       tw.weights AS tag_weights,
       hb.name AS habit_tag,
       coalesce(hb.decayed, 0) AS habit_decayed,
       {relevance} AS relevance
FROM candidates k
JOIN contents c ON c.id = k.id
LEFT JOIN followed_authors fa ON fa.author_id = c.author_id
LEFT JOIN LATERAL (
  SELECT sum(wt.weight) AS weight_sum, jsonb_object_agg(wt.name, wt.weight) AS weights
  FROM content_tags ct JOIN weighted_tags wt ON wt.tag_id = ct.tag_id
  WHERE ct.content_id = k.id
) tw ON true
LEFT JOIN LATERAL (
  SELECT t.name, h.decayed
  FROM content_tags ct JOIN habits h ON h.tag_id = ct.tag_id JOIN tags t ON t.id = ct.tag_id
  WHERE ct.content_id = k.id
  ORDER BY h.decayed DESC, t.name LIMIT 1
) hb ON true
"""


MAX_HALF_LIVES = 200.0

_TYPED_PARAMS: dict[str, sa.BindParameter[Any]] = {
    "viewer_id": sa.bindparam("viewer_id", type_=sa.BigInteger),
    "now": sa.bindparam("now", type_=sa.DateTime(timezone=True)),
    "window_start": sa.bindparam("window_start", type_=sa.DateTime(timezone=True)),
    "habit_half_life": sa.bindparam("habit_half_life", type_=sa.Float),
    "per_source": sa.bindparam("per_source", type_=sa.Integer),
    "query": sa.bindparam("query", type_=sa.Text),
}


def _factors(candidates: str, *, relevance: str) -> Any:
    """The signals, `candidates` (one of the constants above) and each candidate's
    factors, as a CTE; only fixed SQL is put together here, every value is a parameter."""
    sql = _SIGNALS + candidates + _FACTORS.format(relevance=relevance)
    return (
        sa.text(sql)
        # Typed, so asyncpg need not guess what `:now - created_at` means.
        .bindparams(*(p for name, p in _TYPED_PARAMS.items() if f":{name}" in sql))
        .columns(
            sa.column("id", sa.BigInteger),
            sa.column("followed_handle", sa.Text),
            sa.column("tag_sum", sa.Float),
            sa.column("tag_weights", JSONB),
            sa.column("habit_tag", sa.Text),
            sa.column("habit_decayed", sa.Float),
            sa.column("relevance", sa.Float),
        )
        .cte("factors")
    )


def score_expression(factors: Any, weights: FeedWeights, now: datetime) -> Any:
    """The ranking formula of resolvers/ranking.py `score`, in SQL."""
    age_hours = sa.func.extract("epoch", sa.literal(now) - col(Content.listed_at)) / 3600.0
    learned = factors.c.habit_decayed / (factors.c.habit_decayed + weights.habit_saturation)
    return (
        sa.case((factors.c.followed_handle.is_not(None), weights.followed_author), else_=0.0)
        + weights.tag * factors.c.tag_sum
        + weights.habit * learned
        + weights.popularity
        * sa.func.ln(1 + col(Content.reaction_count))
        / sa.func.ln(1 + weights.popular_reference)
        + weights.freshness
        * sa.func.power(
            0.5,
            # Postgres raises on underflow instead of returning 0: past this many
            # half-lives freshness is 0 to any precision that matters.
            sa.func.least(
                sa.func.greatest(age_hours, 0) / weights.fresh_half_life_hours, MAX_HALF_LIVES
            ),
        )
    )


def preference_filters(viewer_id: int | None) -> list[sa.ColumnElement[bool]]:
    """What the viewer's preferences take out of their feed and searches: published
    content only, none carrying a muted tag or by a muted author, and only the chosen
    languages (all when none are chosen)."""
    languages = (
        sa.select(col(Preferences.languages))
        .where(col(Preferences.user_id) == viewer_id)
        .scalar_subquery()
    )
    muted_tagged = (
        sa.select(col(ContentTag.content_id))
        .join(MutedTag, col(MutedTag.tag_id) == col(ContentTag.tag_id))
        .where(col(MutedTag.user_id) == viewer_id, col(ContentTag.content_id) == col(Content.id))
    )
    muted_authors = sa.select(col(MutedAuthor.author_id)).where(
        col(MutedAuthor.user_id) == viewer_id
    )
    return [
        col(Content.status) == "PUBLISHED",
        ~sa.exists(muted_tagged),
        col(Content.author_id).not_in(muted_authors),
        sa.or_(
            sa.func.coalesce(sa.func.cardinality(languages), 0) == 0,
            sa.func.array_position(languages, col(Content.language)).is_not(None),
        ),
    ]


# Ranking statements are planned for the values they run with. asyncpg prepares every
# statement, and after five executions Postgres may switch a prepared statement to a
# generic plan that cannot see the search query or the viewer: measured, search for a
# common word went from 60 ms to 8-10 s that way. Planning a custom plan costs ~2 ms.
# random_page_cost 1.1 instead of 4 (a spinning disk's) because the hot indexes live in
# memory or on SSD; it lets the planner walk the per-author and per-tag indexes the
# candidates come from (feed: 324-363 -> 173 ms at 1M contents).
_PLANNER_SETTINGS = sa.text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('random_page_cost', '1.1', true)"
)


async def plan_for_values(connection: AsyncConnection) -> AsyncConnection:
    """Sets up the connection's current transaction to plan ranking statements as
    _PLANNER_SETTINGS explains; every ranking statement runs after this."""
    await connection.execute(_PLANNER_SETTINGS)
    return connection


def _params(viewer_id: int | None, now: datetime, weights: FeedWeights) -> dict[str, Any]:
    return {
        "viewer_id": viewer_id,
        "now": now,
        "window_start": now - timedelta(days=weights.window_days),
        "habit_half_life": weights.habit_half_life_days,
        "per_source": weights.per_source_limit,
    }


def feed_statement(
    *, viewer_id: int | None, access: ContentAccess, now: datetime, weights: FeedWeights
) -> tuple[Any, dict[str, Any]]:
    """The ranking statement and its parameters (bench/ EXPLAINs exactly this)."""
    factors = _factors(FEED_CANDIDATES, relevance="0")
    score = score_expression(factors, weights, now).label("score")
    conditions = [access_clause(access), *preference_filters(viewer_id)]
    if viewer_id is not None:
        conditions.append(col(Content.author_id) != viewer_id)
    statement = (
        sa.select(
            col(Content.id),
            score,
            col(Content.reaction_count),
            col(Content.listed_at),
            factors.c.followed_handle,
            factors.c.tag_weights,
            factors.c.habit_tag,
            factors.c.habit_decayed,
        )
        .select_from(factors.join(Content, col(Content.id) == factors.c.id))
        .where(*conditions)
        .order_by(score.desc(), col(Content.id).desc())
        .limit(weights.limit)
    )
    return statement, _params(viewer_id, now, weights)


async def rank_feed(
    session: AsyncSession,
    *,
    viewer_id: int | None,
    access: ContentAccess,
    now: datetime,
    weights: FeedWeights,
) -> list[RankedRow]:
    """The viewer's top `weights.limit` items, best first. Muted tags and authors and
    languages the viewer did not choose are filtered out, never ranked low; so is the
    viewer's own content."""
    statement, params = feed_statement(viewer_id=viewer_id, access=access, now=now, weights=weights)
    # A multi-column Core select: run on the connection (sqlmodel's exec wants ORM selects).
    result = await (await plan_for_values(await session.connection())).execute(statement, params)
    return [
        RankedRow(
            content_id=row.id,
            score=float(row.score),
            reactions=row.reaction_count,
            published_at=row.listed_at,
            followed_author=row.followed_handle,
            tag_weights={k: float(v) for k, v in (row.tag_weights or {}).items()},
            habit_tag=row.habit_tag,
            habit_decayed=float(row.habit_decayed or 0.0),
        )
        for row in result.all()
    ]


def search_statement(
    *,
    query: str,
    viewer_id: int | None,
    access: ContentAccess,
    now: datetime,
    weights: FeedWeights,
) -> tuple[Any, dict[str, Any]]:
    factors = _factors(SEARCH_CANDIDATES, relevance="k.relevance")
    learned = factors.c.habit_decayed / (factors.c.habit_decayed + weights.habit_saturation)
    affinity = sa.func.least(
        1.0,
        sa.func.greatest(
            -1.0,
            factors.c.tag_sum
            + learned
            + sa.case((factors.c.followed_handle.is_not(None), 0.5), else_=0.0),
        ),
    )
    score = (factors.c.relevance * (1 + weights.search_affinity * affinity)).label("score")
    statement = (
        sa.select(col(Content.id), score)
        .select_from(factors.join(Content, col(Content.id) == factors.c.id))
        .where(access_clause(access), *preference_filters(viewer_id))
        .order_by(score.desc(), col(Content.id).desc())
        .limit(weights.limit)
    )
    return statement, {"query": query, **_params(viewer_id, now, weights)}


async def rank_search(
    session: AsyncSession,
    *,
    query: str,
    viewer_id: int | None,
    access: ContentAccess,
    now: datetime,
    weights: FeedWeights,
) -> list[tuple[int, float]]:
    """(content id, score) of the best `weights.limit` matches: text relevance in [0, 1)
    scaled by the viewer's affinity to the item (followed author, tag weights, habits),
    under the same access rules and preference filters as the feed."""
    statement, params = search_statement(
        query=query, viewer_id=viewer_id, access=access, now=now, weights=weights
    )
    result = await (await plan_for_values(await session.connection())).execute(statement, params)
    return [(row.id, float(row.score)) for row in result.all()]


async def count_search(
    session: AsyncSession,
    *,
    query: str,
    viewer_id: int | None,
    access: ContentAccess,
    now: datetime,
    limit: int,
) -> int:
    """How many matches the viewer may see, counting at most `limit`: an exact count
    of a word in a quarter of all content reads every match (seconds at 1M contents)."""
    matches = sa.text(f"contents.search_vector @@ {SEARCH_TSQUERY}").bindparams(
        _TYPED_PARAMS["query"]
    )
    visible = (
        sa.select(sa.literal(1))
        .select_from(Content)
        .where(
            matches,
            col(Content.listed_at) <= now,
            access_clause(access),
            *preference_filters(viewer_id),
        )
        .limit(limit)
        .subquery()
    )
    statement = sa.select(sa.func.count()).select_from(visible)
    result = await (await plan_for_values(await session.connection())).execute(
        statement, {"query": query}
    )
    return int(result.scalar_one())
