"""Subscriptions that resume from a cursor (`after`): the events since it are read from
the log and delivered through the broadcaster's own path (same access rules, mutes and
tag filter as live events), oldest first, for all resuming subscriptions together; each
joins the live ones once it has had every event up to where the process's follower is.

The follower moves to an event before the broadcaster takes that event's subscribers,
and a subscription joins in the same step that finds it has had every event up to the
follower's position, with nothing awaited between: an event is either replayed to it or
delivered live, never both, never neither."""

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from db.event_log import read_after
from execution.member import Member
from resolvers.errors import CursorExpired

if TYPE_CHECKING:
    from execution.broadcast import Broadcaster

log = logging.getLogger(__name__)

BATCH = 200
RETRY_SECONDS = (0.2, 5.0)


class CatchUp:
    def __init__(self, broadcaster: "Broadcaster") -> None:
        self.broadcaster = broadcaster
        # Each resuming subscription, and how it joins the live ones.
        self.members: dict[Member, Callable[[], None]] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, member: Member, join: Callable[[], None]) -> None:
        self.members[member] = join
        member.leave = self._leave
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="live-catch-up")

    def _leave(self, member: Member) -> None:
        self.members.pop(member, None)

    def of_viewer(self, user_id: int) -> list[Member]:
        return [m for m in self.members if m.viewer_id == user_id]

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _join_caught_up(self, target: tuple[int, int]) -> list[Member]:
        """Joins every subscription that has had the events up to `target`; those
        still behind it."""
        behind = []
        for member, join in list(self.members.items()):
            assert member.position is not None
            if member.position >= target:
                del self.members[member]
                member.leave = None
                join()
            else:
                behind.append(member)
        return behind

    async def _run(self) -> None:
        broadcaster = self.broadcaster
        follower = broadcaster.follower
        broadcaster.start()
        delay = RETRY_SECONDS[0]
        while self.members:
            target = follower.position
            if target is None:  # the follower has not reached the log yet
                await follower.moved()
                continue
            behind = self._join_caught_up(target)
            if not behind:
                continue
            lowest = min(m.position for m in behind if m.position is not None)
            try:
                async with broadcaster.connections:
                    read = await read_after(follower.fetch, lowest, limit=BATCH, until=target)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: try again, from the same place
                log.warning("catching subscriptions up failed (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_SECONDS[1])
                continue
            delay = RETRY_SECONDS[0]
            for member in behind:
                assert member.position is not None
                if member.position < read.horizon:
                    member.end(CursorExpired())
            for event in read.events:
                # Only those this read covers: one added meanwhile may be further behind.
                current = [
                    m
                    for m in behind
                    if m in self.members and m.position is not None and m.position < event.position
                ]
                if event.kind == "token_revoked":
                    broadcaster.revoked(int(event.body["user"]), event.position)
                else:
                    try:
                        await broadcaster.dispatch(event, _for(event.kind, event.body, current))
                    except Exception:  # those it was for were ended (they resume later)
                        log.exception("replaying %s failed", event)
                for member in current:
                    member.position = event.position
            if len(read.events) < BATCH:
                # Every event up to the target was read: those behind have had theirs.
                for member in behind:
                    if member in self.members and member.position is not None:
                        member.position = max(member.position, target)


def _for(kind: str, body: dict[str, object], members: list[Member]) -> list[Member]:
    """Those of `members` an event of `kind` may be for."""
    if kind == "content_published":
        return [m for m in members if m.shape.type_name == "ContentEvent"]
    if kind == "notification":
        recipient = body.get("recipient")
        return [
            m
            for m in members
            if m.shape.type_name == "NotificationEvent" and m.viewer_id == recipient
        ]
    return []
