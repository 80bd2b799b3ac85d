"""Engines and connections: the only way the rest of the code reaches Postgres."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from db.errors import DatabaseUnavailable, translate_errors


def create_engine(url: str, *, pool_size: int = 10, connect_timeout: float = 5.0) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A connection that died while the database was away is replaced on checkout,
        # which is what lets the gateway recover without a restart.
        pool_pre_ping=True,
        pool_timeout=connect_timeout,
        connect_args={"timeout": connect_timeout, "command_timeout": 30},
    )


class Database:
    """Hands out connections: one short-lived pooled connection per unit of work.

    Strawberry resolves sibling fields concurrently, so each loader batch takes its
    own connection rather than sharing one session across the request.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with translate_errors(), self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction committed when the block exits cleanly, rolled back otherwise."""
        async with translate_errors(), self.engine.begin() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()


class BoundDatabase(Database):
    """Every unit of work runs on one connection inside an outer transaction.

    Tests use it to roll back everything a test wrote; writes become savepoints so
    application code that commits still works inside it.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn.engine)
        self.conn = conn
        # Sibling resolvers run concurrently and one connection runs one statement at a time.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock, translate_errors():
            yield self.conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock, translate_errors(), self.conn.begin_nested():
            yield self.conn

    async def dispose(self) -> None:
        return None


class StatementCounter:
    """Counts the SQL statements an engine runs, to test the shape of a query's cost."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _on_execute(self, *args: Any) -> None:
        self.statements.append(args[2])

    def __enter__(self) -> "StatementCounter":
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._on_execute)

    @property
    def count(self) -> int:
        return len(self.statements)


__all__ = ["BoundDatabase", "Database", "DatabaseUnavailable", "StatementCounter", "create_engine"]
