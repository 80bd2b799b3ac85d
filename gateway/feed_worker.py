"""The feed's background work in every serving process: the jobs writes leave behind
(fan-out, take-backs, rebuilds; db/feed/jobs.py, shared by all processes through SKIP
LOCKED), the next minute's shared lists, and pruning walks past their hour."""

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

# How often an idle worker looks for jobs: a publication reaches feeds within this.
POLL_SECONDS = 0.25
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

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="feed-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        maintained = 0.0
        loop = asyncio.get_running_loop()
        while True:
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
                await asyncio.sleep(self.poll)

    async def maintain(self, now: datetime) -> None:
        """Ranks the next minute's shared lists and prunes what has expired."""
        start = datetime.fromtimestamp(
            (int(now.timestamp()) // SHARED_BUCKET_SECONDS + 1) * SHARED_BUCKET_SECONDS, UTC
        )
        for audience in AUDIENCES:
            await shared.warm(self.db, self.weights, audience, bucket(audience, start), start)
        await jobs.prune(self.db)
