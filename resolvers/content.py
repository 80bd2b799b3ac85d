"""Reading content: lookups and lists, always through the viewer's access rules."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from db.queries import contents as queries
from db.queries.access import ContentAccess
from db.queries.contents import ContentKey, ContentOrder, ContentQuery
from db.tables import Content, Tag
from resolvers import policy, validation
from resolvers.context import Context
from resolvers.cursors import parse_datetime
from resolvers.errors import BadUserInput
from resolvers.ids import decode_id_of
from resolvers.paging import Page, check_first
from resolvers.tags import affinities

__all__ = ["ContentOrder", "ContentQuery", "get_content", "list_contents", "tags_of"]

T = TypeVar("T")

MAX_FILTER_TAGS = 20


async def get_content(ctx: Context, global_id: str) -> Content | None:
    pk = decode_id_of(global_id, "Content")
    return None if pk is None else await ctx.loaders.content_by_id.load(pk)


def _decode_position(ctx: Context, after: str, order: ContentOrder) -> ContentKey:
    values: list[Any] = ctx.cursors.decode(after, f"contents:{order}")
    if len(values) != 2 or not isinstance(values[1], int):
        raise BadUserInput("`after` is not a cursor of this list")
    if order is ContentOrder.POPULAR:
        if not isinstance(values[0], int):
            raise BadUserInput("`after` is not a cursor of this list")
        return (values[0], values[1])
    return (parse_datetime(values[0]), values[1])


def check_query(query: ContentQuery) -> ContentQuery:
    if query.tag_names is not None and len(query.tag_names) > MAX_FILTER_TAGS:
        raise BadUserInput(f"`filter.tags` takes at most {MAX_FILTER_TAGS} tags")
    if query.tag_names is not None:
        query = ContentQuery(
            author_id=query.author_id,
            author_handle=query.author_handle,
            tag_names=tuple(sorted({validation.normalize_tag(t) for t in query.tag_names})),
            status=query.status,
            language=query.language,
        )
    return query


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A contents list request, checked: what both read paths run."""

    limit: int
    query: ContentQuery
    order: ContentOrder
    position: ContentKey | None
    access: ContentAccess
    kind: str


def check_list_request(
    ctx: Context, *, query: ContentQuery, order: ContentOrder, first: int, after: str | None
) -> ListRequest:
    """BAD_USER_INPUT for a page size, filter or cursor that is not acceptable."""
    return ListRequest(
        limit=check_first(first, ctx.max_page_size),
        query=check_query(query),
        order=order,
        position=_decode_position(ctx, after, order) if after is not None else None,
        access=policy.content_filter(ctx.viewer),
        kind=f"contents:{order}",
    )


def counter(ctx: Context, request: ListRequest) -> Callable[[], Awaitable[int]]:
    """totalCount of a list: counted only when a client asks for it."""

    async def total_count() -> int:
        async with ctx.db.session() as session:
            return await queries.count_contents(session, access=request.access, query=request.query)

    return total_count


def keyset_page(
    ctx: Context,
    request: ListRequest,
    found: Sequence[tuple[Any, T]],
    *,
    after: str | None,
    sign: bool = True,
) -> Page[T]:
    """A page from up to `limit + 1` (keyset position, item) pairs read after `after`:
    the extra one only says there is a next page. Without `sign` (nobody reads the
    cursors) edges get "" instead of a signed cursor each."""
    return Page(
        edges=[
            (ctx.cursors.encode(request.kind, key) if sign else "", item)
            for key, item in found[: request.limit]
        ],
        has_next=len(found) > request.limit,
        has_previous=after is not None,
        total_count=counter(ctx, request),
    )


def rows_page(
    ctx: Context, request: ListRequest, rows: Sequence[Content], *, after: str | None
) -> Page[Content]:
    """`keyset_page` of content rows; the rows shown also fill the request's loader."""
    for row in rows[: request.limit]:
        ctx.loaders.content_by_id.prime(row.id, row)  # type: ignore[arg-type]
    return keyset_page(
        ctx, request, [(queries.content_key(row, request.order), row) for row in rows], after=after
    )


async def list_contents(
    ctx: Context, *, query: ContentQuery, order: ContentOrder, first: int, after: str | None
) -> Page[Content]:
    """A page of what the viewer may see, keyset-paged so inserts between pages neither
    repeat nor skip items in the time orders."""
    request = check_list_request(ctx, query=query, order=order, first=first, after=after)
    rows: list[Content] = []
    if request.limit:
        async with ctx.db.session() as session:
            rows = await queries.list_contents(
                session,
                access=request.access,
                query=request.query,
                order=order,
                after=request.position,
                limit=request.limit + 1,
            )
    return rows_page(ctx, request, rows, after=after)


async def tags_of(ctx: Context, content: Content) -> list[Tag]:
    """The content's tags, the viewer's favourites first, then by name."""
    assert content.id is not None
    found = await ctx.loaders.tags_by_content_id.load(content.id)
    if not ctx.viewer.signed_in or len(found) < 2:
        return found
    scores = await affinities(ctx, [tag.id for tag in found if tag.id is not None])
    ranked = sorted(zip(scores, found, strict=True), key=lambda pair: (-pair[0], pair[1].name))
    return [tag for _, tag in ranked]
