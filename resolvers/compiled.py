"""The compiled read path's resolvers: the same checks, access rules and paging as
resolvers/content.py and resolvers/feed.py, with each item's JSON built by Postgres
(db/queries/content_json.py) instead of field by field."""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from db.queries.content_json import (
    Shape,
    Viewing,
    content_json_by_id,
    list_content_json,
)
from db.queries.contents import ContentOrder, ContentQuery
from resolvers import feed as feeds
from resolvers import policy
from resolvers.content import check_list_request, keyset_page
from resolvers.context import Context
from resolvers.paging import Page

# What a list needs when a client selects no node: rows, for their cursors.
ID_ONLY = Shape("Content", (("id", "id", None),))


def viewing(ctx: Context) -> Viewing:
    return Viewing(
        viewer_id=ctx.viewer.id,
        now=datetime.now(UTC),
        habit_half_life_days=ctx.ranking.habit_half_life_days,
        habit_saturation=ctx.ranking.habit_saturation,
    )


async def contents_page(
    ctx: Context,
    shape: Shape,
    *,
    query: ContentQuery,
    order: ContentOrder,
    first: int,
    after: str | None,
    cursors: bool = True,
) -> Page[dict[str, Any]]:
    """resolvers/content.py `list_contents`, each item as its JSON object. Without
    `cursors` (none selected) edges get "" instead of a signed cursor each."""
    request = check_list_request(ctx, query=query, order=order, first=first, after=after)
    rows = []
    if request.limit:
        rows = await list_content_json(
            ctx.db,
            shape,
            viewing(ctx),
            access=request.access,
            query=request.query,
            order=order,
            after=request.position,
            limit=request.limit + 1,
        )
    return keyset_page(
        ctx, request, [(row.key, row.node) for row in rows], after=after, sign=cursors
    )


def published_json(ctx: Context, shape: Shape) -> feeds.Load[dict[str, Any]]:
    """feeds.published_rows, each item as its JSON object."""
    access = policy.content_filter(ctx.viewer)

    async def load(ids: Sequence[int]) -> list[dict[str, Any] | None]:
        return await content_json_by_id(
            ctx.db, shape, viewing(ctx), ids, access=access, published_only=True
        )

    return load


async def feed_page(
    ctx: Context, shape: Shape, *, first: int, after: str | None
) -> Page[feeds.Ranked[dict[str, Any]]]:
    return await feeds.feed(ctx, first=first, after=after, load=published_json(ctx, shape))
