"""The root Subscription type: live updates over WebSocket."""

from collections.abc import AsyncGenerator

import strawberry

from resolvers import live
from resolvers.context import Context
from schema.arguments import given
from schema.content import Content
from schema.live_sharing import delivering
from schema.notifications import Notification


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each newly published content the viewer may see and has not muted; with "
        "tags, only content carrying one of them."
    )
    async def content_published(
        self, info: strawberry.Info[Context], tags: list[str] | None = strawberry.UNSET
    ) -> AsyncGenerator[Content, None]:
        async for row, delivery in live.content_published(info.context, given(tags)):
            content = Content.from_row(row)
            with delivering(info.context, content, delivery):
                yield content

    @strawberry.subscription(
        description="The viewer's own notifications as they happen; requires sign-in."
    )
    async def notifications(
        self, info: strawberry.Info[Context]
    ) -> AsyncGenerator[Notification, None]:
        async for row in live.notifications(info.context):
            yield Notification.from_row(row)
