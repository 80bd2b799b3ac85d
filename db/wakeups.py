"""What a commit tells the rest of the system, after it commits: this process's log
follower reads at once, and the other processes hear it through a NOTIFY sent on its
own, never inside a write's transaction (where NOTIFY takes a lock that serializes
every committing writer on the server). One NOTIFY statement at a time per process;
commits meanwhile share the next one. A NOTIFY lost on the way costs latency only:
followers and delivery workers also poll."""

import asyncio
import contextvars
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from db import outbox
from db.event_log import APPENDED
from db.notify import CHANNEL

log = logging.getLogger(__name__)

_NOTIFY = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)"
# What other processes' followers may wait for a wake-up beyond the commit, at most.
COALESCE_SECONDS = 0.01


class Wakeups:
    def __init__(
        self, fetch: Callable[..., Awaitable[Any]], *, local: Callable[[], None] | None = None
    ) -> None:
        self.fetch = fetch
        self.local = local
        # Names this process in its hints: its own follower was woken directly, and
        # reading the log again when its own NOTIFY comes back was a statement per
        # commit for nothing.
        self.origin = secrets.token_hex(8)
        self._log_written = orjson.dumps({"type": "log", "from": self.origin}).decode()
        # Off until the app starts: nothing is sent from tests that never start one.
        self.sending = False
        self._pending: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    def committed(self, flags: frozenset[str]) -> None:
        """A transaction committed having written what `flags` name."""
        if APPENDED in flags:
            if self.local is not None:
                self.local()
            self._pending[CHANNEL] = self._log_written
        if outbox.ENQUEUED in flags:
            self._pending[outbox.CHANNEL] = ""
        if self.sending and self._pending and (self._task is None or self._task.done()):
            # A context of its own: not the committing request's (its time budget).
            self._task = asyncio.get_running_loop().create_task(
                self._send(), name="wakeups", context=contextvars.Context()
            )

    async def _send(self) -> None:
        while self._pending and self.sending:
            pending, self._pending = self._pending, {}
            try:
                await self.fetch(_NOTIFY, list(pending), list(pending.values()))
            except Exception as error:  # the others poll; a lost wake-up costs latency
                log.debug("could not send wake-ups %s: %s", list(pending), error)
            # Commits in the next few milliseconds share the next NOTIFY: under load a
            # statement per commit otherwise (8 writers: ~270 a second); the first
            # after a quiet spell still goes at once.
            await asyncio.sleep(COALESCE_SECONDS)

    async def stop(self) -> None:
        self.sending = False
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
