"""The root Subscription type: live updates over WebSocket (execution/broadcast.py
delivers them)."""

from collections.abc import AsyncGenerator

import strawberry

from resolvers.context import Context, Live
from resolvers.errors import ServiceUnavailable
from schema.arguments import given
from schema.content import Content
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
