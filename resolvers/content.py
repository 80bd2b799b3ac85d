"""Reading content: what a list's arguments mean, checked."""

from dataclasses import dataclass
from typing import Any

from db.reads.shape import Order
from resolvers import validation
from resolvers.context import Context
from resolvers.cursors import parse_datetime
from resolvers.errors import BadUserInput
from resolvers.paging import check_first

MAX_FILTER_TAGS = 20


@dataclass(frozen=True, slots=True)
class ContentQuery:
    """Narrows a content list; None means no condition."""

    author_handle: str | None = None
    tag_names: tuple[str, ...] | None = None
    status: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A page of a content list, checked: its size, filters, order and where it starts
    (the keyset position of `after`), and the kind its cursors are signed for."""

    limit: int
    query: ContentQuery
    order: Order
    position: tuple[Any, int] | None
    kind: str


def _decode_position(ctx: Context, after: str, kind: str, order: Order) -> tuple[Any, int]:
    values: list[Any] = ctx.cursors.decode(after, kind)
    if len(values) != 2 or not isinstance(values[1], int):
        raise BadUserInput("`after` is not a cursor of this list")
    if order is Order.POPULAR:
        if not isinstance(values[0], int):
            raise BadUserInput("`after` is not a cursor of this list")
        return (values[0], values[1])
    return (parse_datetime(values[0]), values[1])


def check_query(query: ContentQuery) -> ContentQuery:
    if query.tag_names is None:
        return query
    if len(query.tag_names) > MAX_FILTER_TAGS:
        raise BadUserInput(f"`filter.tags` takes at most {MAX_FILTER_TAGS} tags")
    names = tuple(sorted({validation.normalize_tag(t) for t in query.tag_names}))
    return ContentQuery(query.author_handle, names, query.status, query.language)


def check_list_request(
    ctx: Context, *, query: ContentQuery, order: Order, first: int, after: str | None
) -> ListRequest:
    """BAD_USER_INPUT for a page size, filter or cursor that is not acceptable."""
    kind = f"contents:{order}"
    return ListRequest(
        limit=check_first(first, ctx.max_page_size),
        query=check_query(query),
        order=order,
        position=_decode_position(ctx, after, kind, order) if after is not None else None,
        kind=kind,
    )
