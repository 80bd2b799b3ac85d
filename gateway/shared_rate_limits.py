"""Rate limits shared by every gateway process: local buckets, settled through Postgres.

A statement per request would cost every request a round trip. Instead each process
charges its in-memory buckets (gateway/rate_limits.py) and, every `sync_seconds`
(0.1 s), settles what it spent since with the shared table in one statement for all
keys (db/rate_limits.py), which answers what every process together has left: that
becomes the local bucket. Keys charged here within `active_seconds` (the 1,000 most
recent) are read back in the same round, spent or not, so what other processes spend
shows up here within `sync_seconds`. Any other key (a client's first request here, or
its first after a pause) is read from the table before it is charged.

The overshoot is bounded: between two settlements each process spends from a view at
most `sync_seconds` old, so all processes together may let through at most what was
left at the last settlement once per extra process (at worst one full budget each,
for a client bursting through every replica at once). What they let through beyond
the budget stays in the table as a debt, repaid by waiting. When Postgres cannot be
reached the limits go on per process (and settle once it is back).
"""

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from db import rate_limits
from db.session import Database
from gateway.rate_limits import RateLimiter

log = logging.getLogger(__name__)

SYNC_SECONDS = 0.1
# A view older than this is read again before it is charged.
STALE_SECONDS = 0.5
# Keys charged within this long are kept current by the rounds, at most MAX_ACTIVE.
ACTIVE_SECONDS = 10.0
MAX_ACTIVE = 1_000
# How often rows idle long enough to be full again are deleted.
FORGET_SECONDS = 60.0


class SharedRateLimiter:
    """`database` None: the local buckets alone (GATEWAY_RATE_LIMIT_SHARED=false)."""

    def __init__(
        self,
        local: RateLimiter,
        database: Database | None,
        *,
        sync_seconds: float = SYNC_SECONDS,
        stale_seconds: float = STALE_SECONDS,
    ) -> None:
        self.local = local
        self.database = database
        self.sync_seconds = sync_seconds
        self.stale_seconds = stale_seconds
        self._spent: dict[str, float] = {}
        self._settled: dict[str, float] = {}
        # Keys by when they were last charged here, oldest first.
        self._active: OrderedDict[str, float] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failing = False
        self._forgotten_at = time.monotonic()

    @property
    def clock(self) -> Callable[[], float]:
        return self.local.clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self.local.clock = clock

    async def charge(self, key: str, cost: float) -> int | None:
        """As RateLimiter.charge, against what every process has spent."""
        if self.database is None:
            return self.local.charge(key, cost)
        settled = self._settled.get(key)
        if settled is None or time.monotonic() - settled > self.stale_seconds:
            await self._load(key)
        retry_after = self.local.charge(key, cost)
        if retry_after is None:
            self._spent[key] = self._spent.get(key, 0.0) + min(cost, self.local.capacity)
        self._active[key] = time.monotonic()
        self._active.move_to_end(key)
        if len(self._active) > MAX_ACTIVE:
            self._active.popitem(last=False)
        self._keep_settling()
        return retry_after

    async def _load(self, key: str) -> None:
        capacity, refill = self.local.capacity, self.local.refill_per_second
        assert self.database is not None
        try:
            async with self.database.session() as session:
                found = await rate_limits.load_buckets(
                    session, [key], capacity=capacity, refill=refill
                )
        except Exception as error:
            self._failed(error)
            return
        self._failing = False
        # Spent here but not settled yet: the table does not know it.
        self.local.settle(key, found.get(key, capacity) - self._spent.get(key, 0.0))
        self._settled[key] = time.monotonic()

    def _keep_settling(self) -> None:
        if self._closed or (self._task is not None and not self._task.done()):
            return
        # A context of its own: not the request's (its read scope, its log record).
        self._task = asyncio.get_running_loop().create_task(
            self._settle_while_spending(), name="rate-limit-sync", context=contextvars.Context()
        )

    async def _settle_while_spending(self) -> None:
        while (self._spent or self._active) and not self._closed:
            await asyncio.sleep(self.sync_seconds)
            cutoff = time.monotonic() - ACTIVE_SECONDS
            while self._active and next(iter(self._active.values())) < cutoff:
                self._active.popitem(last=False)
            await self.settle()

    async def settle(self) -> None:
        """Hands what this process spent to the table and learns what is left of every
        key charged here lately."""
        spent, self._spent = self._spent, {}
        idle = [key for key in self._active if key not in spent]
        if (not spent and not idle) or self.database is None:
            return
        capacity, refill = self.local.capacity, self.local.refill_per_second
        try:
            async with self.database.session() as session:
                left: dict[str, float] = {}
                if idle:
                    found = await rate_limits.load_buckets(
                        session, idle, capacity=capacity, refill=refill
                    )
                    left = {key: found.get(key, capacity) for key in idle}
                if spent:
                    left |= await rate_limits.spend(
                        session, spent, capacity=capacity, refill=refill
                    )
                if time.monotonic() - self._forgotten_at > FORGET_SECONDS:
                    await rate_limits.forget_full(session, capacity=capacity, refill=refill)
                    self._forgotten_at = time.monotonic()
                await session.commit()
        except Exception as error:
            for key, amount in spent.items():
                self._spent[key] = self._spent.get(key, 0.0) + amount
            self._failed(error)
            return
        self._failing = False
        now = time.monotonic()
        for key, tokens in left.items():
            self.local.settle(key, tokens - self._spent.get(key, 0.0))
            self._settled[key] = now
        for key in [k for k, at in self._settled.items() if now - at > self.stale_seconds]:
            del self._settled[key]

    def _failed(self, error: Exception) -> None:
        if not self._failing:
            log.warning("rate limits are per process until Postgres answers again: %s", error)
        self._failing = True

    async def close(self) -> None:
        """Settles what is left and stops (the app's shutdown)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.settle()
