"""Reading tags, and how much the viewer likes each one."""

from collections.abc import Sequence

from db.queries import tags as queries
from db.tables import Tag
from resolvers import policy
from resolvers.context import Context
from resolvers.ids import decode_id_of
from resolvers.paging import Page, check_first
from resolvers.ranking import learned_affinity

KIND = "tags"


async def affinities(ctx: Context, tag_ids: Sequence[int]) -> list[float]:
    """The viewer's affinity to each tag in [-1, 1]: their explicit weight, else what
    their reactions taught (in [0, 1)). Anonymous viewers have neither: 0, without asking
    the database."""
    if not ctx.viewer.signed_in:
        return [0.0] * len(tag_ids)
    ids = list(tag_ids)
    weights = await ctx.loaders.viewer_weight_by_tag_id.load_many(ids)
    habits = await ctx.loaders.viewer_habit_by_tag_id.load_many(ids)
    return [
        weight if weight is not None else learned_affinity(habit, ctx.ranking)
        for weight, habit in zip(weights, habits, strict=True)
    ]


async def get_tag(ctx: Context, global_id: str) -> Tag | None:
    pk = decode_id_of(global_id, "Tag")
    return None if pk is None else await ctx.loaders.tag_by_id.load(pk)


async def list_tags(ctx: Context, *, first: int, after: str | None) -> Page[Tag]:
    """Tags on content the viewer may see, by name."""
    limit = check_first(first, ctx.max_page_size)
    access = policy.content_filter(ctx.viewer)
    after_name: str | None = None
    if after is not None:
        (after_name,) = ctx.cursors.decode(after, KIND)
    rows: list[Tag] = []
    if limit:
        async with ctx.db.session() as session:
            rows = await queries.list_tags(
                session, after_name=after_name, limit=limit + 1, access=access
            )

    async def total_count() -> int:
        async with ctx.db.session() as session:
            return await queries.count_tags(session, access=access)

    return Page(
        edges=[(ctx.cursors.encode(KIND, (row.name,)), row) for row in rows[:limit]],
        has_next=len(rows) > limit,
        has_previous=after is not None,
        total_count=total_count,
    )
