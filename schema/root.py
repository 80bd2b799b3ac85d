"""The root Query type. Queries are answered whole before strawberry starts
(execution/executor.py); when one cannot be, strawberry resolves its root fields, and
each compiles its own selection: the value is the same either way."""

from typing import Any

import strawberry

from resolvers.context import Context
from schema.content import Content, ContentConnection, ContentFilter
from schema.enums import ContentOrder
from schema.feed import FeedConnection
from schema.node import Node
from schema.notifications import NotificationConnection
from schema.tags import TagConnection
from schema.users import User
from schema.webhooks import WebhookQueries


async def _compiled(info: strawberry.Info[Context]) -> Any:
    return await info.context.reads.field(info)


@strawberry.type
class Query(WebhookQueries):
    @strawberry.field(
        description="Any object by its global id; null when the viewer may not see it."
    )
    async def node(self, info: strawberry.Info[Context], id: strawberry.ID) -> Node | None:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(description="The signed-in user. Null when anonymous.")
    async def viewer(self, info: strawberry.Info[Context]) -> User | None:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(description="A user by handle (with or without '@').")
    async def user(self, info: strawberry.Info[Context], handle: str) -> User | None:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Null when it does not exist or the viewer may not see it: never an error "
        "that tells which."
    )
    async def content(self, info: strawberry.Info[Context], id: strawberry.ID) -> Content | None:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(description="Content the viewer may see, filtered and ordered.")
    async def contents(
        self,
        info: strawberry.Info[Context],
        filter: ContentFilter | None = strawberry.UNSET,
        order_by: ContentOrder | None = ContentOrder.NEWEST,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> ContentConnection:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Ranked for the viewer; anonymous viewers get popular and fresh PUBLIC content."
    )
    async def feed(
        self,
        info: strawberry.Info[Context],
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> FeedConnection:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(
        description="Full-text search, ranked by relevance and the viewer's affinity. Supports "
        "quoted phrases, OR and -exclusions (websearch syntax)."
    )
    async def search(
        self,
        info: strawberry.Info[Context],
        query: str,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> ContentConnection:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(description="Every tag, by name.")
    async def tags(
        self,
        info: strawberry.Info[Context],
        first: int | None = 50,
        after: str | None = strawberry.UNSET,
    ) -> TagConnection:
        return await _compiled(info)  # type: ignore[no-any-return]

    @strawberry.field(description="The viewer's own, newest first; UNAUTHENTICATED when anonymous.")
    async def notifications(
        self,
        info: strawberry.Info[Context],
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
        unread_only: bool | None = False,
    ) -> NotificationConnection:
        return await _compiled(info)  # type: ignore[no-any-return]
