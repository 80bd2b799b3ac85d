"""Engines and sessions: the only way the rest of the code reaches Postgres."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.errors import DatabaseUnavailable, translate_errors
from db.instrument import instrument_engine, timed
from db.read_pool import ReadPool, connect_options

if TYPE_CHECKING:
    from db.replicas import ReplicaSet


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    connect_timeout: float = 5.0,
    statement_timeout: float | None = None,
) -> AsyncEngine:
    """`statement_timeout` (seconds) makes Postgres cancel any one statement that runs
    longer; None leaves the server's setting (migrations and seeding need that)."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A connection that died while the database was away is replaced on checkout,
        # which is what lets the gateway recover without a restart.
        pool_pre_ping=True,
        pool_timeout=connect_timeout,
        connect_args=connect_options(connect_timeout, statement_timeout),
    )
    instrument_engine(engine)
    return engine


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy one."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None, "a checked-out connection has its driver connection"
    return driver


class Database:
    """Hands out sessions: each unit of work gets its own short-lived pooled one.

    Strawberry resolves sibling fields concurrently and one session cannot run two
    statements at once, so every loader batch opens its own session.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        reads: ReadPool | None = None,
        replicas: "ReplicaSet | None" = None,
    ) -> None:
        self.engine = engine
        self.reads = reads
        # Read replicas (db/replicas.py): `fetch` and `read_session` may read there.
        self.replicas = replicas

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Reads, or writes that call `commit()`; anything uncommitted is rolled back."""
        async with translate_errors(), AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: on a replica when one may answer (db/replicas.py)."""
        if self.replicas is not None:
            async with self.replicas.read_connection() as conn:
                if conn is not None:
                    async with (
                        translate_errors(),
                        AsyncSession(bind=conn, expire_on_commit=False) as session,
                    ):
                        yield session
                    return
        async with self.session() as session:
            yield session

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """The rows of one read statement written in SQL with $n parameters, sent as is
        outside any transaction (on the read pool when there is one). A session costs a
        ping, BEGIN and ROLLBACK around its statement and SQLAlchemy's work per
        execution, which the compiled read path (one statement per request) cannot
        afford."""
        _count(self.engine, sql)
        if self.replicas is not None:
            rows = await self.replicas.fetch(sql, *args)
            if rows is not None:
                return rows
        if self.reads is not None:
            async with translate_errors():
                with timed(sql):
                    return await self.reads.fetch(sql, *args)
        async with self.engine.connect() as conn:
            driver = await _driver(conn)
            try:
                async with translate_errors():
                    with timed(sql):
                        return list(await driver.fetch(sql, *args))
            except (DatabaseUnavailable, asyncio.CancelledError):
                # Bypassed, the pool cannot tell this connection died or was left
                # mid-cancel: drop it.
                await conn.invalidate()
                raise

    async def dispose(self) -> None:
        if self.replicas is not None:
            await self.replicas.close()
        await self.engine.dispose()
        if self.reads is not None:
            await self.reads.close()


class BoundDatabase(Database):
    """Every session runs on one connection inside an outer transaction.

    Tests use it to roll back all a test wrote; a session's commit only releases a
    savepoint, so application code that commits works unchanged.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn.engine)
        self.conn = conn
        # Sibling resolvers run concurrently, and one connection runs one statement at a time.
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with (
            self._lock,
            translate_errors(),
            AsyncSession(
                bind=self.conn,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
            ) as session,
        ):
            yield session

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._lock, translate_errors():
            driver = await _driver(self.conn)
            _count(self.engine, sql)
            with timed(sql):
                return list(await driver.fetch(sql, *args))

    async def dispose(self) -> None:
        return None


_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
# Counters listening to an engine, told of statements sent past SQLAlchemy too.
_counters: dict[int, list["StatementCounter"]] = {}


def _count(engine: AsyncEngine, statement: str) -> None:
    for counter in _counters.get(id(engine.sync_engine), ()):
        counter.statements.append(statement)


class StatementCounter:
    """Counts the SQL statements an engine runs, to test the shape of a query's cost."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _on_execute(self, *args: Any) -> None:
        statement: str = args[2]
        # Savepoints come from the test harness's outer transaction, not from the query.
        if not statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            self.statements.append(statement)

    def __enter__(self) -> "StatementCounter":
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._on_execute)
        _counters.setdefault(id(self.engine.sync_engine), []).append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._on_execute)
        _counters[id(self.engine.sync_engine)].remove(self)

    @property
    def count(self) -> int:
        return len(self.statements)
