"""Ranking the shared lists ahead of the minute they serve, so that no first page pays
for it (db/reads/walks.py `shared_list`; a first page still ranks one that is missing)."""

from datetime import datetime

import sqlalchemy as sa

from db.ranking import RankingWeights
from db.reads.fields import Build
from db.reads.shape import ViewerKind
from db.reads.sql import TEXT, param
from db.reads.walks import shared_list
from db.session import Database


async def warm(
    db: Database, weights: RankingWeights, audience: str, bucket: str, at: datetime
) -> int:
    """Ranks `audience`'s list for `bucket` (as of `at`) unless it is stored already;
    how many items it holds."""
    b = Build(ViewerKind.ANONYMOUS, weights)
    listed = shared_list(b, audience, param("bucket", TEXT))
    statement = sa.select(sa.func.count()).select_from(listed).add_cte(*b.side_effects)
    async with db.session() as session:
        found = await (await session.connection()).execute(statement, {"bucket": bucket, "now": at})
        count = int(found.scalar_one())
        await session.commit()
    return count
