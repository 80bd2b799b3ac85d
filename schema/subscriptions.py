"""The root Subscription type: live updates over WebSocket (execution/broadcast.py
delivers them)."""

from collections.abc import AsyncGenerator

import strawberry

from resolvers.context import Context, Live
from resolvers.errors import ServiceUnavailable
from schema.arguments import given
from schema.content import Content
from schema.live_events import ContentEvent, NotificationEvent
from schema.notifications import Notification


def _live(info: strawberry.Info[Context]) -> Live:
    if info.context.live is None:
        raise ServiceUnavailable()
    return info.context.live


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each newly published content the viewer may see and has not muted; with "
        "tags, only content carrying one of them."
    )
    async def content_published(
        self, info: strawberry.Info[Context], tags: list[str] | None = strawberry.UNSET
    ) -> AsyncGenerator[Content, None]:
        async for value in _live(info).content_published(info, given(tags)):
            yield value

    @strawberry.subscription(
        description="The viewer's own notifications as they happen; requires sign-in."
    )
    async def notifications(
        self, info: strawberry.Info[Context]
    ) -> AsyncGenerator[Notification, None]:
        async for value in _live(info).notifications(info):
            yield value

    @strawberry.subscription(
        description="contentPublished, resumable. With `after`, first every event since that "
        "cursor that the viewer may see (same filters: access, mutes, tags), in order and once "
        "each, then live ones. CURSOR_EXPIRED when `after` is older than what the event log "
        "keeps."
    )
    async def content_events(
        self,
        info: strawberry.Info[Context],
        tags: list[str] | None = strawberry.UNSET,
        after: str | None = strawberry.UNSET,
    ) -> AsyncGenerator[ContentEvent, None]:
        async for value in _live(info).content_events(info, given(tags), given(after)):
            yield value

    @strawberry.subscription(description="notifications, resumable the same way; requires sign-in.")
    async def notification_events(
        self, info: strawberry.Info[Context], after: str | None = strawberry.UNSET
    ) -> AsyncGenerator[NotificationEvent, None]:
        async for value in _live(info).notification_events(info, given(after)):
            yield value
