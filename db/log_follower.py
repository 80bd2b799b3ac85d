"""A process's reader of the event log (db/event_log.py): from where it is, in order,
it hands each event to its handler once, whatever happens to its database connections
meanwhile: a failed read is retried from the same position, so a process that lost its
connections catches up when they are back.

It reads when woken (a commit in this process, a NOTIFY from another, sent after their
commits: db/wakeups.py) and every `poll_seconds` in case a wake-up was lost. Events
that wait for an older transaction to end are looked for again soon, sooner than the
poll."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from db.event_log import LoggedEvent, Position, prune, read_after, start_position

log = logging.getLogger(__name__)

Handler = Callable[[LoggedEvent], Awaitable[None]]
# How soon to look again for events held back by an older transaction, doubling up to
# the poll interval.
RECHECK_SECONDS = 0.005
BATCH = 500


class LogFollower:
    def __init__(
        self,
        fetch: Callable[..., Awaitable[Any]],
        *,
        poll_seconds: float = 1.0,
        backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        self.fetch = fetch
        self.poll_seconds = poll_seconds
        self.backoff = backoff
        # The last event handed on (or where following began): everything at or before
        # it has been handed on or was there before this process.
        self.position: Position | None = None
        self.reading = False
        self._handler: Handler | None = None
        self._lost: Callable[[], None] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._moved = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def start(self, handler: Handler, lost: Callable[[], None]) -> None:
        """`lost`: events this process had not read yet were pruned."""
        self._handler, self._lost = handler, lost
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-log-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def moved(self) -> None:
        """Until the position moves (or a read found nothing new)."""
        await self._moved.wait()

    async def _run(self) -> None:
        delay = self.backoff[0]
        recheck = RECHECK_SECONDS
        while True:
            self._wake.clear()
            try:
                if self.position is None:
                    self.position = await start_position(self.fetch)
                read = await read_after(self.fetch, self.position, limit=BATCH)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # unreachable, cancelled, a failover: read again later
                if self.reading:
                    log.warning("event log: reading failed (%s); retrying", error)
                self.reading = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            if not self.reading:
                log.info("event log: following from %s", self.position)
            self.reading, delay = True, self.backoff[0]
            if read.horizon > self.position:
                log.error("event log: events after %s were pruned unread", self.position)
                self.position = read.horizon
                if self._lost is not None:
                    self._lost()
            for event in read.events:
                # Set before the handler runs: it takes its subscribers before it awaits.
                self.position = event.position
                assert self._handler is not None
                try:
                    await self._handler(event)
                except Exception:
                    log.exception("event log: handling %s failed", event)
            self._moved.set()
            self._moved = asyncio.Event()
            if len(read.events) == BATCH:
                continue
            timeout = self.poll_seconds
            if read.waiting:
                timeout, recheck = min(recheck, self.poll_seconds), recheck * 2
            else:
                recheck = RECHECK_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)


async def keep_pruning(db: Any, *, max_age: timedelta, max_events: int, every: float) -> None:
    """Prunes the log every `every` seconds, in whichever process gets there first."""
    while True:
        await asyncio.sleep(every)
        try:
            async with db.session() as session:
                pruned = await prune(session, max_age=max_age, max_events=max_events)
                await session.commit()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("event log: pruning failed (%s); trying again later", error)
            continue
        if pruned is not None and pruned[1]:
            log.info("event log: pruned %d events up to %s", pruned[1], pruned[0])
