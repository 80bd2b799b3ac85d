"""The feed's background work in every serving process: the jobs writes leave behind
(fan-out, take-backs, rebuilds; db/feed/jobs.py, shared by all processes through SKIP
LOCKED), the next minute's shared lists, and pruning walks past their hour.

A write that commits in this process wakes its worker at once (the jobs a write leaves
are committed with it), so a publication reaches followers' feeds right after its
commit without a poll; the poll only picks up jobs other processes left and could not
take (they were busy or stopped), at one statement a second when idle."""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from db.errors import DatabaseUnavailable
from db.feed import jobs, shared
from db.ranking import RankingWeights
from db.session import Database
from resolvers.feed import SHARED_BUCKET_SECONDS, bucket

log = logging.getLogger("gateway.feed")

# How often an idle worker looks for jobs no commit of its own process announced.
POLL_SECONDS = 1.0
MAINTAIN_SECONDS = 20.0
AUDIENCES = ("anonymous", "members")


class FeedWorker:
    def __init__(
        self, db: Database, weights: RankingWeights, *, poll: float = POLL_SECONDS
    ) -> None:
        self.db = db
        self.weights = weights
        self.poll = poll
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def _committed(self, _flags: frozenset[str]) -> None:
        # Told once the commit is done (Database.after_commit), so the worker never
        # looks before the jobs are there; its own commits are not news.
        if asyncio.current_task() is not self._task:
            self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self.db.after_commit.append(self._committed)
            self._task = asyncio.create_task(self._run(), name="feed-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self.db.after_commit.remove(self._committed)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _idle(self) -> None:
        """Until a commit of this process or the poll interval, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll):
                await self._wake.wait()

    async def _run(self) -> None:
        maintained = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            try:
                done = await jobs.run_pending(self.db, self.weights)
                if loop.time() - maintained > MAINTAIN_SECONDS:
                    await self.maintain(datetime.now(UTC))
                    maintained = loop.time()
            except DatabaseUnavailable:
                done = 0
                await asyncio.sleep(2.0)
            except Exception:
                done = 0
                log.exception("the feed worker failed; it carries on")
                await asyncio.sleep(1.0)
            if not done:
                await self._idle()

    async def maintain(self, now: datetime) -> None:
        """Ranks the next minute's shared lists and prunes what has expired."""
        start = datetime.fromtimestamp(
            (int(now.timestamp()) // SHARED_BUCKET_SECONDS + 1) * SHARED_BUCKET_SECONDS, UTC
        )
        for audience in AUDIENCES:
            await shared.warm(self.db, self.weights, audience, bucket(audience, start), start)
        await jobs.prune(self.db, self.weights)
