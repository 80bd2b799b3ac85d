"""Where SQL statements are observed: one hook every statement passes through, whichever
way it was sent (SQLAlchemy sessions through engine events, raw asyncpg reads through
`timed`), so metrics, request logs and traces are fed from one place.

Observers are registered by the process (gateway/observe.py); with none registered a
statement costs one empty loop. Nothing here knows what an observer does with it.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# (sql, started at time.perf_counter(), seconds it took, whether it succeeded)
StatementObserver = Callable[[str, float, float, bool], None]

_observers: list[StatementObserver] = []
_START = "gateway_statement_started"


def add_observer(observer: StatementObserver) -> None:
    if observer not in _observers:
        _observers.append(observer)


def remove_observer(observer: StatementObserver) -> None:
    if observer in _observers:
        _observers.remove(observer)


def observe_statement(sql: str, started: float, seconds: float, ok: bool) -> None:
    for observer in _observers:
        observer(sql, started, seconds, ok)


@contextmanager
def timed(sql: str) -> Iterator[None]:
    """Observes one statement sent past SQLAlchemy (the raw asyncpg read path)."""
    if not _observers:
        yield
        return
    started = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        observe_statement(sql, started, time.perf_counter() - started, ok)


def _before(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: Any
) -> None:
    conn.info[_START] = time.perf_counter()


def _after(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: Any
) -> None:
    started = conn.info.pop(_START, None)
    if started is not None:
        observe_statement(statement, started, time.perf_counter() - started, True)


def _error(context: Any) -> None:
    conn = context.connection
    started = conn.info.pop(_START, None) if conn is not None else None
    if started is not None:
        statement = context.statement or ""
        observe_statement(statement, started, time.perf_counter() - started, False)


def _committed(conn: Any) -> None:
    # Imported here: db.replicas imports the pools, which import this module's users.
    from db.replicas import mark_written

    mark_written()


def instrument_engine(engine: AsyncEngine) -> None:
    """Every statement the engine's connections run goes to the observers (idempotent).
    The events run in the greenlet SQLAlchemy starts for the awaiting task, which shares
    that task's context variables, so observers see the request they belong to."""
    sync = engine.sync_engine
    if event.contains(sync, "before_cursor_execute", _before):
        return
    event.listen(sync, "before_cursor_execute", _before)
    event.listen(sync, "after_cursor_execute", _after)
    event.listen(sync, "handle_error", _error)
    # A request that wrote reads on from the primary (db/replicas.py).
    event.listen(sync, "commit", _committed)


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
