"""Hints between gateway processes through Postgres LISTEN/NOTIFY: that the event log
has grown (db/wakeups.py sends it after a commit), that a viewer wrote (db/replicas.py).
NOTIFY is at most once: nothing that must arrive travels this way (what happened is in
the event log, db/event_log.py); a hint lost costs latency only.

Each process holds one LISTEN connection and fans hints out to its listeners and its
subscribers' bounded queues; a lost connection is re-established with backoff, and the
listeners are told when it is back (what was sent meanwhile is lost)."""

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import asyncpg
import orjson

from db.embedded import asyncpg_dsn

CHANNEL = "gateway_events"
# How the connection holding LISTEN shows in pg_stat_activity: its last query there is a
# keepalive, so an operator (or a test) finds it by this name.
APPLICATION_NAME = "gateway events"
T = TypeVar("T")
log = logging.getLogger(__name__)


class Overflow(Exception):
    """A subscriber fell too far behind; its subscription ends instead of growing."""


class Closed(Exception):
    """The bus shut down (the process is stopping)."""


_SHUTDOWN = object()


@dataclass(eq=False)
class Subscriber:
    accepts: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[object] = field(default_factory=lambda: asyncio.Queue(maxsize=100))
    overflowed: bool = False

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed or not self.accepts(event):
            return
        # The queue's last slot stays free for the shutdown marker.
        if self.queue.qsize() < self.queue.maxsize - 1:
            self.queue.put_nowait(event)
            return
        self.overflowed = True
        # Drop what is queued: the subscriber ends at its next read anyway.
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(Overflow())

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self.queue.get()
            if item is _SHUTDOWN:
                raise Closed()
            if isinstance(item, Overflow):
                raise item
            assert isinstance(item, dict)
            yield item


class EventBus:
    def __init__(
        self,
        url: str,
        *,
        queue_size: int = 100,
        backoff: tuple[float, float] = (0.2, 10.0),
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._queue_size = queue_size
        self._backoff = backoff
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._shared: OrderedDict[Hashable, Any] = OrderedDict()
        self.connection_pid: int | None = None
        # Called with each hint, and (with None) whenever the connection is (re)made.
        self._listeners: list[Callable[[dict[str, Any] | None], None]] = []

    @property
    def listening(self) -> bool:
        return self._connected.is_set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-bus")

    async def wait_listening(self) -> None:
        await self._connected.wait()

    async def stop(self) -> None:
        """Ends every subscription (they complete) and the LISTEN connection."""
        for subscriber in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.queue.put_nowait(_SHUTDOWN)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def listen(self, listener: Callable[[dict[str, Any] | None], None]) -> None:
        """Calls `listener` with each hint as it comes, and with None each time the
        LISTEN connection is (re)made: hints sent while it was down are lost."""
        self._listeners.append(listener)

    def shared(self, key: Hashable, factory: Callable[[], T]) -> T:
        """One `factory()` result per key for all of this process's subscribers, so the
        work an event needs is done once however many sockets receive it. Kept for the
        most recent events only."""
        if key in self._shared:
            self._shared.move_to_end(key)
            return cast(T, self._shared[key])
        value = factory()
        self._shared[key] = value
        if len(self._shared) > 256:
            self._shared.popitem(last=False)
        return value

    @contextlib.contextmanager
    def subscribe(
        self, accepts: Callable[[dict[str, Any]], bool], *, queue_size: int | None = None
    ) -> Any:
        """A subscriber that may fall `queue_size` events behind (the bus's default
        unless given) before it is cut off."""
        size = self._queue_size if queue_size is None else queue_size
        subscriber = Subscriber(accepts, asyncio.Queue(maxsize=size + 1))
        self._subscribers.add(subscriber)
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)

    def _dispatch(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("ignoring a malformed event on %s: %.200s", CHANNEL, payload)
            return
        for listener in self._listeners:
            listener(event)
        for subscriber in list(self._subscribers):
            subscriber.offer(event)

    async def _hold(self, conn: Any) -> None:
        """Returns when the connection is gone. The termination listener catches a closed
        socket at once; the periodic ping catches one that died silently."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), timeout=15)
                return
            try:
                await conn.fetchval("SELECT 1", timeout=5)
            except Exception:
                return

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=5, server_settings={"application_name": APPLICATION_NAME}
                )
                self._lost.clear()
                conn.add_termination_listener(lambda _c: self._lost.set())
                await conn.add_listener(CHANNEL, self._dispatch)
                self.connection_pid = conn.get_server_pid()
                self._connected.set()
                for listener in self._listeners:
                    listener(None)
                delay = self._backoff[0]
                log.info("listening for events on %s", CHANNEL)
                await self._hold(conn)
                log.warning("lost the LISTEN connection; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure to connect: retry with backoff
                log.warning("LISTEN connection failed (%s); retrying in %.1fs", error, delay)
            finally:
                self._connected.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=1))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])
