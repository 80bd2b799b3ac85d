"""Reads on streaming replicas: which database a read goes to.

Only reads that opt in go to a replica: those made inside a `ReadScope` (the gateway
opens one per HTTP request) through `ReplicaSet.fetch()` (one statement, on a replica's
raw asyncpg pool; `pool_for()` names the pool for a caller with its own executor) or
`read_connection()` (a read-only session's connection). Writes, the event log,
subscriptions and everything else stay on the primary. A read goes to
the primary instead when
- no replica is healthy (unreachable, not a standby, or more than `max_lag` behind),
- its request has already written (a mutation reads back what it wrote),
- its viewer wrote recently and no healthy replica has replayed that write yet: the
  primary's WAL position after the write is remembered for the viewer (and told to
  every gateway process over the event channel), and the viewer reads from the
  primary until a replica is seen past it.

Lag is measured against the primary's own WAL position, sampled each check: a replica
is as far behind as the oldest sample it has not replayed, and 0 s behind once it has
replayed the newest. (pg_last_xact_replay_timestamp alone grows while the primary is
idle, and a replica that has replayed everything is not behind.)
"""

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.errors import DatabaseUnavailable, translate_errors
from db.instrument import StatementObservers
from db.notify import CHANNEL, EventBus
from db.read_pool import Planning, ReadPool

log = logging.getLogger(__name__)

WROTE_EVENT = "viewer_wrote"
CHECK_SECONDS = 1.0
# Primary WAL samples kept to tell a replica's lag: enough for lags past any sane limit.
MAX_SAMPLES = 600


@dataclass(slots=True)
class ReadScope:
    """One HTTP request's reads: whose they are, and whether the request has written."""

    viewer: Callable[[], int | None]
    wrote: bool = False


read_scope: ContextVar[ReadScope | None] = ContextVar("read_scope", default=None)


def mark_written() -> None:
    """A transaction of the current request committed (db/session.py's commit hook)."""
    scope = read_scope.get()
    if scope is not None:
        scope.wrote = True


def lsn(text: str) -> int:
    """A pg_lsn's text ('16/B374D848') as a number that orders like it."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def label(url: str) -> str:
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    if isinstance(host, tuple):
        host = host[0]
    return f"{host}:{parsed.port or 5432}/{parsed.database}"


async def replica_lag_seconds(conn: Any) -> float:
    """A standby's lag seen from itself (for one-off checks: `gateway doctor`): 0 when it
    has replayed all it received, else the age of the last transaction it replayed."""
    lag = await conn.fetchval(
        "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()"
        " THEN 0 ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
    )
    return float(lag or 0.0)


@dataclass(slots=True)
class Replica:
    url: str
    pool: ReadPool
    engine: AsyncEngine | None = None
    healthy: bool = False
    lag: float | None = None
    replayed: int = -1
    problem: str | None = "not checked yet"

    @property
    def name(self) -> str:
        return label(self.url)

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = {"replica": self.name, "healthy": self.healthy}
        found["lag_seconds"] = None if self.lag is None else round(self.lag, 3)
        if self.problem:
            found["problem"] = self.problem
        return found


class ReplicaSet:
    def __init__(
        self,
        replicas: list[Replica],
        *,
        primary: ReadPool,
        primary_engine: AsyncEngine,
        max_lag: float,
        bus: EventBus | None = None,
        check_seconds: float = CHECK_SECONDS,
        on_check: Callable[[list[Replica]], None] | None = None,
    ) -> None:
        self.replicas = replicas
        self.primary = primary
        self.primary_engine = primary_engine
        self.max_lag = max_lag
        self.bus = bus
        self.check_seconds = check_seconds
        self.on_check = on_check
        self._samples: deque[tuple[float, int]] = deque(maxlen=MAX_SAMPLES)
        # viewer id -> (primary WAL position after their write, until when it matters)
        self._writes: dict[int, tuple[int, float]] = {}
        self._turn = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        # Nobody's until Database.observe hands over its app's.
        self.observers = StatementObservers()

    def observe(self, observers: StatementObservers) -> None:
        """What the replicas run goes to `observers` (Database.observe calls this)."""
        self.observers = observers
        for replica in self.replicas:
            if replica.engine is not None:
                observers.watch(replica.engine.sync_engine)

    # --- routing ------------------------------------------------------------------

    def _replica(self) -> Replica | None:
        """A replica this scope's reads may use, or None for the primary."""
        scope = read_scope.get()
        if scope is None or scope.wrote:
            return None
        eligible = [r for r in self.replicas if r.healthy]
        if not eligible:
            return None
        viewer_id = scope.viewer()
        pending = self._writes.get(viewer_id) if viewer_id is not None else None
        if pending is not None:
            position, until = pending
            if time.monotonic() > until:
                del self._writes[viewer_id]  # type: ignore[arg-type]
            else:
                eligible = [r for r in eligible if r.replayed >= position]
                if not eligible:
                    return None
        return eligible[next(self._turn) % len(eligible)]

    def pool_for(self) -> ReadPool:
        """The pool this scope's next read statement may use: a replica's or the primary's."""
        replica = self._replica()
        return self.primary if replica is None else replica.pool

    async def fetch(
        self, sql: str, *args: Any, planning: Planning = Planning.CHOSEN
    ) -> list[Any] | None:
        """The rows of one read statement from a replica; None when the primary must
        answer (no replica may, or the one asked has just gone away)."""
        replica = self._replica()
        if replica is None:
            return None
        try:
            async with translate_errors():
                with self.observers.timed(sql):
                    return await replica.pool.fetch(sql, *args, planning=planning)
        except DatabaseUnavailable as error:
            self.lost(replica, error)
            return None

    @contextlib.asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection | None]:
        """A replica connection for a read-only session; None: use the primary."""
        replica = self._replica()
        if replica is None or replica.engine is None:
            yield None
            return
        try:
            async with translate_errors():
                conn = await replica.engine.connect()
        except DatabaseUnavailable as error:
            self.lost(replica, error)
            yield None
            return
        async with conn:
            yield conn

    def lost(self, replica: Replica, error: Exception) -> None:
        """A read found the replica gone: out of use until a check finds it back."""
        if replica.healthy:
            log.warning("read replica %s went away: %s", replica.name, error)
        replica.healthy = False
        replica.problem = f"unreachable: {error}"

    # --- read-your-writes -----------------------------------------------------------

    def remember(self, viewer_id: int, position: int) -> None:
        # Past max_lag every healthy replica has replayed it (or is skipped as lagging).
        until = time.monotonic() + self.max_lag + self.check_seconds
        known = self._writes.get(viewer_id)
        if known is None or known[0] < position:
            self._writes[viewer_id] = (position, until)

    async def note_write(self, viewer_id: int) -> None:
        """After `viewer_id`'s write committed: where the primary's WAL is now, kept here
        and told to the other gateway processes, before the response goes out."""
        event = orjson.dumps({"type": WROTE_EVENT, "user": viewer_id}).decode()
        rows = await self.primary.fetch(
            "SELECT pg_current_wal_lsn()::text AS position, pg_notify($1,"
            " jsonb_set($2::jsonb, '{lsn}', to_jsonb(pg_current_wal_lsn()::text))::text)",
            CHANNEL,
            event,
        )
        self.remember(viewer_id, lsn(rows[0]["position"]))

    # --- health -----------------------------------------------------------------------

    def _lag(self, replayed: int, now: float) -> float:
        if not self._samples or replayed >= self._samples[-1][1]:
            return 0.0
        for at, position in self._samples:
            if position > replayed:
                return now - at
        return now - self._samples[0][0]

    async def check(self) -> None:
        try:
            rows = await self.primary.fetch("SELECT pg_current_wal_lsn()::text AS position")
        except Exception as error:
            log.warning("replica check: the primary did not answer: %s", error)
        else:
            self._samples.append((time.monotonic(), lsn(rows[0]["position"])))
        now = time.monotonic()
        for replica in self.replicas:
            try:
                (row,) = await asyncio.wait_for(
                    replica.pool.fetch(
                        "SELECT pg_is_in_recovery() AS standby,"
                        " pg_last_wal_replay_lsn()::text AS replayed"
                    ),
                    timeout=max(self.check_seconds, 1.0) * 2,
                )
            except Exception as error:
                if replica.healthy or replica.problem == "not checked yet":
                    log.warning("read replica %s is unreachable: %s", replica.name, error)
                replica.healthy, replica.lag = False, None
                replica.problem = f"unreachable: {error or type(error).__name__}"
                continue
            if not row["standby"] or row["replayed"] is None:
                replica.healthy, replica.lag = False, None
                replica.problem = "not a standby (pg_is_in_recovery() is false)"
                continue
            replica.replayed = lsn(row["replayed"])
            replica.lag = self._lag(replica.replayed, now)
            healthy = replica.lag <= self.max_lag
            if healthy != replica.healthy:
                log.info(
                    "read replica %s %s (%.1f s behind)",
                    replica.name,
                    "in use" if healthy else "skipped",
                    replica.lag,
                )
            replica.healthy = healthy
            replica.problem = None if healthy else f"{replica.lag:.1f} s behind"
        if self.on_check is not None:
            self.on_check(self.replicas)

    async def _keep_checking(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.check_seconds)

    async def _hear_writes(self, bus: EventBus) -> None:
        wrote = bus.subscribe(lambda event: event.get("type") == WROTE_EVENT)
        # Closed or Overflow end the subscription; writes are then remembered locally only.
        with wrote as subscriber, contextlib.suppress(Exception):
            async for event in subscriber:
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    self.remember(int(event["user"]), lsn(str(event["lsn"])))

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._keep_checking(), name="replica-checks"))
        if self.bus is not None:
            self._tasks.append(asyncio.create_task(self._hear_writes(self.bus)))

    def status(self) -> list[dict[str, Any]]:
        return [replica.status() for replica in self.replicas]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for replica in self.replicas:
            await replica.pool.close()
            if replica.engine is not None:
                await replica.engine.dispose()
