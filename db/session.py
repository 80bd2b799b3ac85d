"""Engines, sessions and reads: the only way the rest of the code reaches Postgres.

Reads are one statement each, sent on a plain asyncpg pool (db/read_pool.py). Writes run
in SQLAlchemy sessions: a transaction each, on a pool that is not pinged on checkout (a
round trip per session): a connection the server closed is noticed without asking, and
one that died unnoticed fails its statement once and is replaced."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from db.deadline import waiting_for_connection, within_budget
from db.errors import DatabaseUnavailable, translate_errors
from db.event_log import APPENDED, EVENTS_OFF
from db.instrument import StatementObservers
from db.outbox import ENQUEUED
from db.read_pool import Planning, ReadPool, connect_options
from db.replicas import mark_written

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

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
        pool_timeout=connect_timeout,
        connect_args=connect_options(connect_timeout, statement_timeout),
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
    # A request that wrote reads on from the primary (db/replicas.py).
    event.listen(engine.sync_engine, "commit", _wrote)
    return engine


# What a session's writes leave for after its commit (db/wakeups.py), and who hears it.
_FLAGS = (APPENDED, ENQUEUED)
_AFTER_COMMIT = "gateway.after_commit"


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    flags = frozenset(flag for flag in _FLAGS if session.info.pop(flag, False))
    for listener in session.info.get(_AFTER_COMMIT, ()):
        listener(flags)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    for flag in _FLAGS:
        session.info.pop(flag, None)


def _wrote(_conn: Any) -> None:
    mark_written()


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose socket the server closed (a restart, a failover) is
    refused at checkout, and the pool opens another: what pre-ping detects, without the
    round trip."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise exc.DisconnectionError("the server closed this connection")


async def _driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy one."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None, "a checked-out connection has its driver connection"
    return driver


class Database:
    """Sessions for writes (each unit of work its own short-lived one) and `fetch` for
    reads (one statement, on the read pool when there is one)."""

    def __init__(
        self,
        engine: AsyncEngine,
        reads: ReadPool | None = None,
        replicas: "ReplicaSet | None" = None,
    ) -> None:
        self.engine = engine
        self.reads = reads
        # Read replicas (db/replicas.py): `fetch` may read there.
        self.replicas = replicas
        self.counters: list[StatementCounter] = []
        # Told, once a session has committed, what its writes left to announce (the
        # flags db/wakeups.py reads; none for most writes): run in the committing task.
        self.after_commit: list[Callable[[frozenset[str]], None]] = []
        # False: writes append no events to the log (GATEWAY_EVENTS).
        self.events = True
        # Nobody's until `observe` hands over its app's: a database outside an app
        # (the CLI's, tests') is observed by nobody, at the cost of one empty check.
        self.observers = StatementObservers()

    def observe(self, observers: StatementObservers) -> None:
        """The statements this database sends, from now on, go to `observers` (and no
        longer to the ones before): its app's, so that apps sharing a process do not see
        each other's."""
        self.observers.unwatch()
        self.observers = observers
        observers.watch(self._statement_source())
        if self.replicas is not None:
            self.replicas.observe(observers)

    def _statement_source(self) -> "Engine | Connection":
        return self.engine.sync_engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Writes that call `commit()` (and the reads they make); anything uncommitted
        is rolled back. Inside a request, within what is left of its time budget
        (db/deadline.py)."""
        async with (
            within_budget(),
            translate_errors(),
            AsyncSession(self.engine, expire_on_commit=False) as session,
        ):
            if self.after_commit:
                session.info[_AFTER_COMMIT] = self.after_commit
            if not self.events:
                session.info[EVENTS_OFF] = True
            # Checked out now, not at the first statement, so that a budget running out
            # meanwhile is known to have run out waiting for the pool.
            with waiting_for_connection():
                await session.connection()
            yield session

    async def fetch(
        self, sql: str, *args: Any, planning: Planning = Planning.CHOSEN, primary: bool = False
    ) -> list[Any]:
        """The rows of one read statement with $n parameters, sent as is outside any
        transaction. `planning` sends it to the read pool that plans it that way;
        `primary` keeps it off the replicas (it writes, or reads what only the primary
        has). Inside a request, within what is left of its time budget (db/deadline.py)."""
        self._count(sql)
        async with within_budget():
            if self.replicas is not None and not primary:
                rows = await self.replicas.fetch(sql, *args, planning=planning)
                if rows is not None:
                    return rows
            return await self._fetch(sql, *args, planning=planning)

    async def _fetch(self, sql: str, *args: Any, planning: Planning) -> list[Any]:
        if self.reads is not None:
            async with translate_errors():
                with self.observers.timed(sql):
                    return await self.reads.fetch(sql, *args, planning=planning)
        async with self.engine.connect() as conn:
            driver = await _driver(conn)
            try:
                async with translate_errors():
                    with self.observers.timed(sql):
                        return list(await driver.fetch(sql, *args))
            except (DatabaseUnavailable, asyncio.CancelledError):
                # Bypassed, the pool cannot tell this connection died or was left
                # mid-cancel: drop it.
                await conn.invalidate()
                raise

    def _count(self, statement: str) -> None:
        for counter in self.counters:
            counter.statements.append(statement)

    async def dispose(self) -> None:
        self.observers.unwatch()
        if self.replicas is not None:
            await self.replicas.close()
        await self.engine.dispose()
        if self.reads is not None:
            await self.reads.close()


class _TaskLock:
    """An asyncio lock the task holding it may take again: code that reads through
    `fetch` while its own session is open (on a pool, two connections) must not wait
    for itself when both share one connection."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if self._owner is not task or task is None:
            await self._lock.acquire()
            self._owner = task
        self._depth += 1

    async def __aexit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


class BoundDatabase(Database):
    """Every session runs on one connection inside an outer transaction.

    Tests use it to roll back all a test wrote; a session's commit only releases a
    savepoint, so application code that commits works unchanged.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn.engine)
        self.conn = conn
        # Sibling resolvers run concurrently, and one connection runs one statement at a time.
        self._lock = _TaskLock()

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

    async def fetch(
        self, sql: str, *args: Any, planning: Planning = Planning.CHOSEN, primary: bool = False
    ) -> list[Any]:
        async with self._lock, translate_errors():
            driver = await _driver(self.conn)
            self._count(sql)
            with self.observers.timed(sql):
                return list(await driver.fetch(sql, *args))

    def _statement_source(self) -> "Engine | Connection":
        # The engine is shared with other tests' databases; this connection is not.
        sync = self.conn.sync_connection
        assert sync is not None, "a connected AsyncConnection has its sync connection"
        return sync

    async def dispose(self) -> None:
        self.observers.unwatch()


_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


class StatementCounter:
    """Counts the SQL statements a database runs (sessions' and reads'), to test the
    shape of a query's cost."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements: list[str] = []

    def _on_execute(self, *args: Any) -> None:
        statement: str = args[2]
        # Savepoints come from the test harness's outer transaction, not from the query.
        if not statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            self.statements.append(statement)

    def __enter__(self) -> "StatementCounter":
        event.listen(self.db.engine.sync_engine, "before_cursor_execute", self._on_execute)
        self.db.counters.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.db.engine.sync_engine, "before_cursor_execute", self._on_execute)
        self.db.counters.remove(self)

    @property
    def count(self) -> int:
        return len(self.statements)
