"""How the feed's write statements are planned: for the values they run with (a generic
plan cannot see whose feed it builds, and picks badly for viewers who follow hundreds),
costing random reads as SSD or memory does (db/read_pool.py explains both)."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

_SETTINGS = sa.text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('random_page_cost', '1.1', true)"
)


async def plan_for_values(connection: AsyncConnection) -> AsyncConnection:
    """Sets the planner up for the rest of the connection's current transaction."""
    await connection.execute(_SETTINGS)
    return connection
