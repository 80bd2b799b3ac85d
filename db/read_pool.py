"""Plain asyncpg connections for reads: each request's one statement.

Through SQLAlchemy's pool each checkout pays a greenlet switch in and out, and asyncpg's
own pool would reset every connection on release with a round trip (`SELECT
pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`). Connections here never
hold session state (no transactions, LISTEN, cursors or SET are ever left on them), so
release does no reset at all, and nothing pings them: asyncpg replaces a connection the
server closed when it is next acquired, and one found dead mid-statement is dropped.

Three pools, by how their statements are planned. Search statements must be planned
for each query's values: asyncpg prepares every statement, and after five executions
Postgres may switch to a generic plan that cannot see the search query (a common word
went from 60 ms to 8-10 s that way; docs/performance.md), so their pool forces custom
plans. A signed-in feed's first page is the opposite: planning it costs ~1 ms, as much
as running it, and its generic plan is the one it needs whatever the viewer. Left to
choose, Postgres compares the estimates of the first five custom plans with the
generic one's, which differ by a few percent either way (mostly over the part that
ranks a missing shared list, which rarely runs): a connection that chose custom plans
ran each first page in ~2 ms instead of ~1. So feed statements have a pool that forces
generic plans, and so do most reads (execution/executor.py `_planning`): lookups by key,
walks, and lists read in index order, whose generic plan is right for any values, and
which Postgres, left to choose, kept planning for every request (~0.2 ms of a 0.45 ms
contents list). A list of content narrowed by an author or tags keeps Postgres's choice:
how many rows match decides the plan. All of them cost random pages
as SSD or memory do (1.1, not 4), which lets the planner walk the per-author and
per-tag indexes the feed and search read."""

import asyncio
from enum import StrEnum
from typing import Any

import asyncpg

from db.deadline import waiting_for_connection
from db.embedded import asyncpg_dsn
from db.errors import DatabaseUnavailable, is_unavailable

# asyncpg's own limit on waiting for a reply; with a statement timeout it stays longer,
# so the server's cancellation (a clear error) arrives before the client gives up.
COMMAND_TIMEOUT = 30.0
PLANNER_SETTINGS = {"random_page_cost": "1.1"}
# asyncpg keeps a connection's statements prepared only up to 15 KiB of SQL by default,
# and prepares (parses and plans) any longer one at every execution: a signed-in first
# page with cursors (~15.5 KiB) took 4 ms in the gateway against 2 ms prepared. Compiled
# reads are few and bounded (execution/executor.py), so all of them are kept.
MAX_CACHED_STATEMENT_BYTES = 1024 * 1024


def connect_options(connect_timeout: float, statement_timeout: float | None) -> dict[str, Any]:
    """asyncpg's connection arguments for every pool (here and db/session.py):
    `statement_timeout` (seconds) makes Postgres cancel any one statement that runs
    longer; None leaves the server's setting and waits as long as a statement takes
    (migrations and seeding rewrite whole tables)."""
    options: dict[str, Any] = {"timeout": connect_timeout, "command_timeout": None}
    if statement_timeout:
        options["server_settings"] = {"statement_timeout": f"{round(statement_timeout * 1000)}"}
        options["command_timeout"] = max(COMMAND_TIMEOUT, statement_timeout + 5)
    return options


class Planning(StrEnum):
    """How a read statement is planned: the value of plan_cache_mode on its pool."""

    CHOSEN = "auto"
    CUSTOM = "force_custom_plan"
    GENERIC = "force_generic_plan"


async def _keep(connection: asyncpg.Connection) -> None:
    """Reset on release: nothing to reset (asyncpg still rolls back an open transaction)."""


def pool_size(size: int, planning: Planning) -> int:
    """Connections of each pool for GATEWAY_DB_POOL_SIZE `size`: `size` for the generic
    plans most reads use, half as many (at least two) for each of the others."""
    return size if planning is Planning.GENERIC else max(2, size // 2)


class ReadPool:
    def __init__(
        self,
        url: str,
        *,
        size: int = 10,
        connect_timeout: float = 5.0,
        statement_timeout: float | None = None,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.size = size
        self.connect_timeout = connect_timeout
        self.options = connect_options(connect_timeout, statement_timeout)
        self._pools: dict[Planning, asyncpg.Pool] = {}
        self._opening = asyncio.Lock()
        self._closed = False

    def pool_size(self, planning: Planning) -> int:
        return pool_size(self.size, planning)

    async def _opened(self, planning: Planning) -> asyncpg.Pool:
        if self._closed:
            # Shutting down: a late read must not open a pool nothing would close.
            raise DatabaseUnavailable("the read pool is closed")
        pool = self._pools.get(planning)
        if pool is None:
            async with self._opening:
                pool = self._pools.get(planning)
                if pool is None:
                    settings = {**self.options.get("server_settings", {}), **PLANNER_SETTINGS}
                    if planning is not Planning.CHOSEN:
                        settings["plan_cache_mode"] = planning.value
                    # min_size 0: opening the pool connects nothing, so a database that
                    # is away at startup does not stop the gateway from starting.
                    pool = self._pools[planning] = await asyncpg.create_pool(
                        self.dsn,
                        min_size=0,
                        max_size=self.pool_size(planning),
                        max_cacheable_statement_size=MAX_CACHED_STATEMENT_BYTES,
                        **{**self.options, "server_settings": settings},
                        reset=_keep,
                    )
        return pool

    async def fetch(self, sql: str, *args: Any, planning: Planning = Planning.CHOSEN) -> list[Any]:
        pool = await self._opened(planning)
        with waiting_for_connection():
            connection = await pool.acquire(timeout=self.connect_timeout)
        try:
            return list(await connection.fetch(sql, *args))
        except Exception as error:
            if connection.is_closed() or is_unavailable(error):
                # Released without a reset, a connection the server dropped would be
                # handed out again: close it and let the pool open a new one.
                connection.terminate()
            raise
        finally:
            await pool.release(connection)

    def connections(self) -> tuple[int, int]:
        """Connections open in all, and how many of them are idle."""
        pools = list(self._pools.values())
        return sum(p.get_size() for p in pools), sum(p.get_idle_size() for p in pools)

    async def close(self) -> None:
        self._closed = True
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()
