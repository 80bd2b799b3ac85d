"""Where reads start: the paged lists (with their keyset positions and counts) and the
lookups of one object. Each source's parameters are named after its slot (`s3_limit`),
and `*_values` functions say what to pass for them, next to the SQL that reads them."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from db.reads.access import AccessKind, content_visible, visibilities_param
from db.reads.fields import CONTENT_TAGS, CONTENTS, ENTITIES, NOTIFICATIONS, TAGS, USERS, Build
from db.reads.shape import (
    AuthorContents,
    By,
    ContentList,
    Lookup,
    NotificationList,
    Order,
    TagList,
    ViewerKind,
)
from db.reads.sql import BIGINT, BIGINTS, INT, TEXT, TEXTS, TIMESTAMP, iso, lit, param


def slot_param(slot: int, part: str, type_: Any) -> sa.BindParameter[Any]:
    return param(slot_name(slot, part), type_)


def slot_name(slot: int, part: str) -> str:
    return f"s{slot}_{part}"


@dataclass(frozen=True, slots=True)
class Rows:
    """A page's rows: `select` reads at most the page plus one row, every column of the
    listed table; `order(page)` and `keys(page)` say how the rows of that select (as the
    subquery `page`) are ordered and what each one's keyset position is; `count` counts
    the whole list."""

    select: Any
    order: Callable[[Any], list[Any]]
    keys: Callable[[Any], list[Any]]
    count: Any
    # More values of the page object, e.g. whether a walk was found.
    extra: list[tuple[str, Any]] = field(default_factory=list)


def _limit(slot: int) -> Any:
    return slot_param(slot, "fetch", INT)


def page_values(slot: int, first: int) -> dict[str, Any]:
    """A page of `first` reads one row more, which says whether more follow."""
    return {slot_name(slot, "first"): first, slot_name(slot, "fetch"): first + 1 if first else 0}


def _content_columns(c: Any) -> list[Any]:
    return [column for column in c.c if column.name != "search_vector"]


def _keyset(sort: Any, id_: Any, slot: int, *, ascending: bool, sort_type: Any) -> Any:
    position = sa.tuple_(sort, id_)
    bound = sa.tuple_(
        slot_param(slot, "after_sort", sort_type), slot_param(slot, "after_id", BIGINT)
    )
    return position > bound if ascending else position < bound


def _ordered_contents(c: Any, conditions: list[Any], order: Order, slot: int, after: bool) -> Rows:
    popular = order is Order.POPULAR
    sort = c.c.reaction_count if popular else c.c.listed_at
    ascending = order is Order.OLDEST
    listed = list(conditions)
    if after:
        listed.append(
            _keyset(
                sort, c.c.id, slot, ascending=ascending, sort_type=INT if popular else TIMESTAMP
            )
        )
    select = sa.select(*_content_columns(c)).where(*listed).order_by(*_content_order(c, order))
    count = sa.select(sa.func.count()).select_from(c).where(*conditions)
    return Rows(
        select.limit(_limit(slot)),
        lambda page: _content_order(page, order),
        lambda page: content_keys(page, order),
        count,
    )


def _content_order(row: Any, order: Order) -> list[Any]:
    sort = row.c.reaction_count if order is Order.POPULAR else row.c.listed_at
    if order is Order.OLDEST:
        return [sort.asc(), row.c.id.asc()]
    return [sort.desc(), row.c.id.desc()]


def content_list(source: ContentList, b: Build) -> Rows:
    slot = source.slot

    def filters(c: Any) -> list[Any]:
        found = []
        if "author_id" in source.filters:
            found.append(c.c.author_id == slot_param(slot, "author_id", BIGINT))
        if "author_handle" in source.filters:
            author = sa.select(USERS.c.id).where(
                USERS.c.handle == slot_param(slot, "author_handle", TEXT)
            )
            found.append(c.c.author_id == author.scalar_subquery())
        if "tags" in source.filters:
            ct, t = b.alias(CONTENT_TAGS), b.alias(TAGS)
            tagged = (
                sa.select(ct.c.content_id)
                .select_from(ct.join(t, t.c.id == ct.c.tag_id))
                .where(t.c.name == sa.any_(slot_param(slot, "tags", TEXTS)))
            )
            found.append(c.c.id.in_(tagged))
        if "status" in source.filters:
            found.append(c.c.status == slot_param(slot, "status", TEXT))
        if "language" in source.filters:
            found.append(c.c.language == slot_param(slot, "language", TEXT))
        return found

    if b.access is AccessKind.PUBLISHED_OR_OWN:
        return _published_or_own(b, filters, source.order, slot, source.after)
    c = b.alias(CONTENTS)
    return _ordered_contents(c, [b.visible(c), *filters(c)], source.order, slot, source.after)


def _published_or_own(
    b: Build, filters: Callable[[Any], list[Any]], order: Order, slot: int, after: bool
) -> Rows:
    """A signed-in viewer's list: what their kind of viewer may read, and their own
    content that is not among it, each read in the list's order (through its own index)
    and merged. As one condition (published OR their own) Postgres could use neither
    index, and read and sorted the whole table: 245 ms at 1M contents."""
    published, own = b.alias(CONTENTS), b.alias(CONTENTS)
    visibilities = visibilities_param()

    def readable(row: Any) -> ColumnElement[bool]:
        return content_visible(
            AccessKind.PUBLISHED, row, visibilities=visibilities, author=b.viewer
        )

    parts = (
        (published, readable(published)),
        (own, sa.and_(own.c.author_id == b.viewer, ~readable(own))),
    )
    branches = [
        _ordered_contents(row, [condition, *filters(row)], order, slot, after).select.subquery()
        for row, condition in parts
    ]
    merged = sa.union_all(*(sa.select(branch) for branch in branches)).subquery(f"listed{slot}")
    c = b.alias(CONTENTS)
    count = sa.select(sa.func.count()).select_from(c).where(b.visible(c), *filters(c))
    return Rows(
        sa.select(merged).order_by(*_content_order(merged, order)).limit(_limit(slot)),
        lambda page: _content_order(page, order),
        lambda page: content_keys(page, order),
        count,
    )


def content_keys(page: Any, order: Order) -> list[Any]:
    """The keyset position of each row of a contents page, as cursors hold it."""
    if order is Order.POPULAR:
        return [page.c.reaction_count, page.c.id]
    return [iso(page.c.listed_at), page.c.id]


def content_list_values(
    slot: int,
    *,
    first: int,
    after: tuple[Any, int] | None,
    author_id: int | None = None,
    author_handle: str | None = None,
    tags: list[str] | None = None,
    status: str | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    values = page_values(slot, first)
    given = {
        "author_id": author_id,
        "author_handle": author_handle,
        "tags": tags,
        "status": status,
        "language": language,
    }
    values.update({slot_name(slot, k): v for k, v in given.items() if v is not None})
    if after is not None:
        values[slot_name(slot, "after_sort")], values[slot_name(slot, "after_id")] = after
    return values


def content_filters(**given: Any) -> frozenset[str]:
    return frozenset(k for k, v in given.items() if v is not None)


def author_contents(source: AuthorContents, b: Build, author: Any) -> Rows:
    """What the viewer may see of the user `author`'s content, newest first."""
    c = b.alias(CONTENTS)
    conditions = [c.c.author_id == author.c.id, b.visible(c)]
    return _ordered_contents(c, conditions, Order.NEWEST, source.slot, source.after)


def tag_in_use(t: Any, b: Build) -> Any:
    """A tag exists for a viewer only while it is on content they may see: a name used
    only on someone's draft, or only in someone's preferences, is not theirs to know."""
    ct, c = b.alias(CONTENT_TAGS), b.alias(CONTENTS)
    return sa.exists(
        sa.select(lit(1))
        .select_from(ct.join(c, c.c.id == ct.c.content_id))
        .where(ct.c.tag_id == t.c.id, b.visible(c))
    )


def tag_list(source: TagList, b: Build) -> Rows:
    t = b.alias(TAGS)
    name = t.c.name.collate("C")
    conditions = [tag_in_use(t, b)]
    listed = list(conditions)
    if source.after:
        listed.append(name > slot_param(source.slot, "after_name", TEXT))
    select = sa.select(*t.c).where(*listed).order_by(name).limit(_limit(source.slot))
    count = sa.select(sa.func.count()).select_from(t).where(*conditions)
    return Rows(select, lambda page: [page.c.name.collate("C")], lambda page: [page.c.name], count)


def notification_list(source: NotificationList, b: Build) -> Rows:
    n = b.alias(NOTIFICATIONS)
    conditions = [n.c.recipient_id == b.viewer]
    if source.unread_only:
        conditions.append(n.c.read_at.is_(None))
    listed = list(conditions)
    if source.after:
        listed.append(n.c.id < slot_param(source.slot, "after_id", BIGINT))
    select = sa.select(*n.c).where(*listed).order_by(n.c.id.desc()).limit(_limit(source.slot))
    count = sa.select(sa.func.count()).select_from(n).where(*conditions)
    return Rows(select, lambda page: [page.c.id.desc()], lambda page: [page.c.id], count)


def found_by_viewer(entity: str, row: Any, b: Build) -> list[ColumnElement[bool]]:
    """What the viewer may find of `entity` by id, under the same rules as lists: hidden
    looks exactly like missing. Preferences and email settings are read off their user's
    row, and only the user themself reads them; webhooks are an admin's only."""
    if entity == "content":
        return [b.visible(row)]
    if entity == "tag":
        return [tag_in_use(row, b)]
    if entity == "notification":
        return [row.c.recipient_id == b.viewer]
    if entity in ("preferences", "email_settings"):
        return [row.c.id == b.viewer]
    if entity == "webhook":
        return [sa.true() if b.viewer_kind is ViewerKind.ADMIN else sa.false()]
    return []


def lookup(found: Lookup, b: Build) -> tuple[Any, list[Any]]:
    """The row alias of a looked-up object and the conditions that find it."""
    entity = found.obj.entity
    row = b.alias(ENTITIES[entity].table)
    if found.by is By.VIEWER:
        return row, [row.c.id == b.viewer]
    if found.by is By.HANDLE:
        return row, [row.c.handle == slot_param(found.slot, "handle", TEXT)]
    if found.by is By.ALL:
        return row, found_by_viewer(entity, row, b)
    return row, [row.c.id == slot_param(found.slot, "id", BIGINT), *found_by_viewer(entity, row, b)]


def lookup_many(entity: str, slot: int, b: Build) -> tuple[Any, Any, list[Any]]:
    """Objects by a list of ids, in the list's order (for what writes return and live
    events): the ids' positions, the row alias and the conditions."""
    ids = sa.func.unnest(slot_param(slot, "ids", BIGINTS)).table_valued(
        "id", with_ordinality="position"
    )
    ids = ids.render_derived(name=f"ids{slot}", with_types=False)
    row = b.alias(ENTITIES[entity].table)
    return ids, row, [row.c.id == ids.c.id, *found_by_viewer(entity, row, b)]
