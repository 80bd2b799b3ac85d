"""Reads of content: keyset-paged lists, counts and batched lookups."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased, defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.queries.access import ContentAccess, SqlParams, access_clause, access_sql
from db.tables import Content, ContentTag, Tag, User


class ContentOrder(StrEnum):
    NEWEST = "NEWEST"
    OLDEST = "OLDEST"
    POPULAR = "POPULAR"


@dataclass(frozen=True, slots=True)
class ContentQuery:
    """Narrows a content list; None means no condition."""

    author_id: int | None = None
    author_handle: str | None = None
    tag_names: tuple[str, ...] | None = None
    status: str | None = None
    language: str | None = None


# A keyset position: the sort column's value and the id that breaks ties.
ContentKey = tuple[datetime, int] | tuple[int, int]


def _sort_column(order: ContentOrder) -> Any:
    return col(Content.reaction_count) if order is ContentOrder.POPULAR else col(Content.listed_at)


def content_key(content: Content, order: ContentOrder) -> ContentKey:
    assert content.id is not None
    if order is ContentOrder.POPULAR:
        return (content.reaction_count, content.id)
    assert content.listed_at is not None
    return (content.listed_at, content.id)


def _conditions(access: ContentAccess, query: ContentQuery) -> list[sa.ColumnElement[bool]]:
    conditions = [access_clause(access)]
    if query.author_id is not None:
        conditions.append(col(Content.author_id) == query.author_id)
    if query.author_handle is not None:
        author = select(User.id).where(col(User.handle) == query.author_handle).scalar_subquery()
        conditions.append(col(Content.author_id) == author)
    if query.tag_names is not None:
        tagged = (
            select(ContentTag.content_id)
            .join(Tag, col(Tag.id) == col(ContentTag.tag_id))
            .where(col(Tag.name).in_(query.tag_names))
        )
        conditions.append(col(Content.id).in_(tagged))
    if query.status is not None:
        conditions.append(col(Content.status) == query.status)
    if query.language is not None:
        conditions.append(col(Content.language) == query.language)
    return conditions


def list_statement(
    columns: Sequence[Any],
    *,
    access: ContentAccess,
    query: ContentQuery,
    order: ContentOrder,
    after: ContentKey | None,
    limit: int,
) -> Any:
    """`columns` of up to `limit` visible contents after the keyset position `after`,
    in `order`."""
    sort = _sort_column(order)
    conditions = _conditions(access, query)
    ascending = order is ContentOrder.OLDEST
    if after is not None:
        position = sa.tuple_(sort, col(Content.id))
        bound = sa.tuple_(sa.literal(after[0]), sa.literal(after[1]))
        conditions.append(position > bound if ascending else position < bound)
    ordering = (
        (sort.asc(), col(Content.id).asc()) if ascending else (sort.desc(), col(Content.id).desc())
    )
    return sa.select(*columns).where(*conditions).order_by(*ordering).limit(limit)


def list_sql(
    columns: str,
    *,
    access: ContentAccess,
    query: ContentQuery,
    order: ContentOrder,
    after: ContentKey | None,
    limit: int,
    params: SqlParams,
    sources: str = "contents c",
) -> str:
    """`list_statement` as SQL text over `contents c`, for the compiled read path."""
    conditions = [access_sql(access, "c", params)]
    if query.author_id is not None:
        conditions.append(f"c.author_id = {params(query.author_id, 'bigint')}")
    if query.author_handle is not None:
        handle = params(query.author_handle, "text")
        conditions.append(f"c.author_id = (SELECT id FROM users WHERE handle = {handle})")
    if query.tag_names is not None:
        names = params(list(query.tag_names), "text[]")
        conditions.append(
            "c.id IN (SELECT ct.content_id FROM content_tags ct JOIN tags t ON t.id = ct.tag_id"
            f" WHERE t.name = ANY({names}))"
        )
    if query.status is not None:
        conditions.append(f"c.status = {params(query.status, 'text')}")
    if query.language is not None:
        conditions.append(f"c.language = {params(query.language, 'text')}")
    popular = order is ContentOrder.POPULAR
    sort = "c.reaction_count" if popular else "c.listed_at"
    direction = "ASC" if order is ContentOrder.OLDEST else "DESC"
    if after is not None:
        bound = params(after[0], "int" if popular else "timestamptz")
        compare = ">" if order is ContentOrder.OLDEST else "<"
        conditions.append(f"({sort}, c.id) {compare} ({bound}, {params(after[1], 'bigint')})")
    return (
        f"SELECT {columns} FROM {sources} WHERE {' AND '.join(conditions)}"
        f" ORDER BY {sort} {direction}, c.id {direction} LIMIT {params(limit, 'int')}"
    )


async def list_contents(
    session: AsyncSession,
    *,
    access: ContentAccess,
    query: ContentQuery,
    order: ContentOrder,
    after: ContentKey | None,
    limit: int,
) -> list[Content]:
    """Up to `limit` visible contents after the keyset position `after`, in `order`."""
    statement = list_statement(
        (Content,), access=access, query=query, order=order, after=after, limit=limit
    ).options(defer(Content.search_vector))  # type: ignore[arg-type]
    return list((await session.exec(statement)).scalars().all())


async def pages_by_author(
    session: AsyncSession,
    author_ids: Sequence[int],
    *,
    access: ContentAccess,
    after: ContentKey | None,
    limit: int,
) -> dict[int, list[Content]]:
    """`list_contents` of each author (newest first) in one statement: a LATERAL page per
    author, each walking that author's index."""
    authors = sa.select(
        sa.func.unnest(
            sa.bindparam("author_ids", list(author_ids), type_=ARRAY(sa.BigInteger))
        ).label("author_id")
    ).subquery("authors")
    page = (
        list_statement(
            (Content,),
            access=access,
            query=ContentQuery(),
            order=ContentOrder.NEWEST,
            after=after,
            limit=limit,
        )
        .where(col(Content.author_id) == authors.c.author_id)
        .lateral("page")
    )
    content = aliased(Content, page)
    statement = (
        select(content)
        .select_from(authors)
        .join(page, sa.true())
        .options(defer(content.search_vector))  # type: ignore[arg-type]
        .order_by(page.c.author_id, page.c.listed_at.desc(), page.c.id.desc())
    )
    found: dict[int, list[Content]] = {i: [] for i in author_ids}
    for row in (await session.exec(statement)).all():
        found[row.author_id].append(row)
    return found


async def count_contents(
    session: AsyncSession, *, access: ContentAccess, query: ContentQuery
) -> int:
    statement = select(sa.func.count()).select_from(Content).where(*_conditions(access, query))
    return int((await session.exec(statement)).one())


async def contents_by_id(
    session: AsyncSession, ids: Sequence[int], *, access: ContentAccess
) -> list[Content | None]:
    """In the order of `ids`; None where there is no such content or it is not visible."""
    statement = (
        select(Content)
        .options(defer(Content.search_vector))  # type: ignore[arg-type]
        .where(col(Content.id).in_(ids), access_clause(access))
    )
    by_id = {row.id: row for row in (await session.exec(statement)).all()}
    return [by_id.get(i) for i in ids]


async def tags_by_content_id(session: AsyncSession, content_ids: Sequence[int]) -> list[list[Tag]]:
    """Each content's tags, by name; an empty list for unknown ids."""
    statement = (
        select(ContentTag.content_id, Tag)
        .join(Tag, col(Tag.id) == col(ContentTag.tag_id))
        .where(col(ContentTag.content_id).in_(content_ids))
        .order_by(col(Tag.name))
    )
    grouped: dict[int, list[Tag]] = {i: [] for i in content_ids}
    for content_id, tag in (await session.exec(statement)).all():
        grouped[content_id].append(tag)
    return [grouped[i] for i in content_ids]


async def published_counts_by_tag_id(
    session: AsyncSession, tag_ids: Sequence[int], *, access: ContentAccess
) -> list[int]:
    """How many visible, published contents carry each tag (an author's own drafts are
    visible to them but do not count)."""
    statement = (
        select(ContentTag.tag_id, sa.func.count())
        .join(Content, col(Content.id) == col(ContentTag.content_id))
        .where(
            col(ContentTag.tag_id).in_(tag_ids),
            col(Content.status) == "PUBLISHED",
            access_clause(access),
        )
        .group_by(col(ContentTag.tag_id))
    )
    counts = dict((await session.exec(statement)).all())
    return [int(counts.get(i, 0)) for i in tag_ids]
