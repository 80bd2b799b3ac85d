"""Content rows by id, for what composes messages outside GraphQL (emails, webhook
payloads): the access rule is db/reads/access.py's, as for every read."""

from collections.abc import Sequence

from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.reads.access import ContentAccess, visible_to
from db.tables import Content, ContentTag, Tag

CONTENTS = Content.__table__  # type: ignore[attr-defined]


async def contents_by_id(
    session: AsyncSession, ids: Sequence[int], *, access: ContentAccess
) -> list[Content | None]:
    """In the order of `ids`; None where there is no such content or it is not visible."""
    statement = (
        select(Content)
        .options(defer(Content.search_vector))  # type: ignore[arg-type]
        .where(col(Content.id).in_(ids), visible_to(access, CONTENTS))
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
