"""Where SQL statements are observed: one hook every statement passes through, whichever
way it was sent (SQLAlchemy sessions through engine events, raw asyncpg reads through
`StatementObservers.timed`), so metrics, request logs and traces are fed from one place.

Each app owns one `StatementObservers` (gateway/app.py builds it and hands it to its
Database), so two apps in one process, as tests build them, do not see each other's
statements. With no observer added a statement costs one empty check. Nothing here
knows what an observer does with it.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

# (sql, started at time.perf_counter(), seconds it took, whether it succeeded)
StatementObserver = Callable[[str, float, float, bool], None]

# The statement a connection is running: (its StatementObservers, when it started).
_START = "gateway_statement_started"


class StatementObservers:
    """The observers of one app's statements, and the engines or connections whose
    statements reach them (`watch`)."""

    __slots__ = ("_observers", "_sources")

    def __init__(self) -> None:
        self._observers: list[StatementObserver] = []
        self._sources: list[Engine | Connection] = []

    def add(self, observer: StatementObserver) -> None:
        if observer not in self._observers:
            self._observers.append(observer)

    def remove(self, observer: StatementObserver) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def statement(self, sql: str, started: float, seconds: float, ok: bool) -> None:
        for observer in self._observers:
            observer(sql, started, seconds, ok)

    @contextmanager
    def timed(self, sql: str) -> Iterator[None]:
        """Observes one statement sent past SQLAlchemy (the raw asyncpg read path)."""
        if not self._observers:
            yield
            return
        started = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.statement(sql, started, time.perf_counter() - started, ok)

    def watch(self, source: Engine | Connection) -> None:
        """The statements `source` runs (all an engine's connections', or one
        connection's) come here. The events run in the greenlet SQLAlchemy starts for
        the awaiting task, which shares that task's context variables, so observers see
        the request they belong to. Where two watch one source, the last one sees it."""
        _finish_on(source.engine)
        if not event.contains(source, "before_cursor_execute", self._before):
            event.listen(source, "before_cursor_execute", self._before)
            self._sources.append(source)

    def unwatch(self) -> None:
        """Stops watching every source: what they run no longer comes here."""
        for source in self._sources:
            if event.contains(source, "before_cursor_execute", self._before):
                event.remove(source, "before_cursor_execute", self._before)
        self._sources.clear()

    def _before(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: Any
    ) -> None:
        if self._observers:
            conn.info[_START] = (self, time.perf_counter())


# The end of a statement is heard on the engine (SQLAlchemy takes error hooks only there)
# and goes to the observers its start named, so these hold no state of their own.
def _after(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: Any
) -> None:
    begun = conn.info.pop(_START, None)
    if begun is not None:
        observers, started = begun
        observers.statement(statement, started, time.perf_counter() - started, True)


def _error(context: Any) -> None:
    conn = context.connection
    begun = conn.info.pop(_START, None) if conn is not None else None
    if begun is not None:
        observers, started = begun
        statement = context.statement or ""
        observers.statement(statement, started, time.perf_counter() - started, False)


def _finish_on(engine: Engine) -> None:
    if not event.contains(engine, "after_cursor_execute", _after):
        event.listen(engine, "after_cursor_execute", _after)
        event.listen(engine, "handle_error", _error)


def pool_connections(engine: AsyncEngine, reads: Any = None) -> dict[str, int]:
    """Connections this process holds open to the primary, by state: `in_use` (checked
    out), `idle` (pooled, ready). `reads` is a db.read_pool.ReadPool, if there is one."""
    pool: Any = engine.sync_engine.pool
    in_use = int(pool.checkedout()) if hasattr(pool, "checkedout") else 0
    idle = int(pool.checkedin()) if hasattr(pool, "checkedin") else 0
    if reads is not None:
        size, free = reads.connections()
        in_use += size - free
        idle += free
    return {"in_use": in_use, "idle": idle}
