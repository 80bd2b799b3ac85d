"""Tags are created on first use, by whichever write names them first."""

from collections.abc import Sequence

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Tag


async def ensure_tags(session: AsyncSession, names: Sequence[str]) -> list[Tag]:
    """The tags named, created where missing, in the order of `names`."""
    if not names:
        return []
    # DO NOTHING, not a read-then-insert: two writers naming a new tag at once both win.
    await session.exec(
        insert(Tag)
        .values([{"name": n} for n in names])
        .on_conflict_do_nothing(index_elements=["name"])
    )
    rows = (await session.exec(select(Tag).where(col(Tag.name).in_(names)))).all()
    by_name = {tag.name: tag for tag in rows}
    return [by_name[n] for n in names]
