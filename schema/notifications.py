"""Notifications: someone followed you, reacted, or published."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.tables import Notification as NotificationRow
from resolvers.context import Context
from resolvers.ids import encode_id
from resolvers.paging import Page
from schema.node import Node, PageInfo

if TYPE_CHECKING:
    from schema.content import Content
    from schema.users import User


@strawberry.enum(description="What a notification is about.")
class NotificationKind(Enum):
    NEW_FOLLOWER = "NEW_FOLLOWER"
    REACTION = "REACTION"
    NEW_CONTENT_FROM_FOLLOWED = "NEW_CONTENT_FROM_FOLLOWED"


@strawberry.type(description="Something that happened that concerns the viewer.")
class Notification(Node):
    row: strawberry.Private[NotificationRow]

    @classmethod
    def from_row(cls, row: NotificationRow) -> "Notification":
        assert row.id is not None
        return cls(id=strawberry.ID(encode_id("Notification", row.id)), row=row)

    @strawberry.field
    def kind(self) -> NotificationKind:
        return NotificationKind(self.row.kind)

    @strawberry.field(description="Who did it.")
    async def actor(
        self, info: strawberry.Info[Context]
    ) -> Annotated["User", strawberry.lazy("schema.users")] | None:
        from schema.users import User

        if self.row.actor_id is None:
            return None
        user = await info.context.loaders.user_by_id.load(self.row.actor_id)
        return User.from_row(user) if user else None

    @strawberry.field(description="What it is about; null if it is gone or no longer visible.")
    async def content(
        self, info: strawberry.Info[Context]
    ) -> Annotated["Content", strawberry.lazy("schema.content")] | None:
        from schema.content import Content

        if self.row.content_id is None:
            return None
        found = await info.context.loaders.content_by_id.load(self.row.content_id)
        return Content.from_row(found) if found else None

    @strawberry.field
    def created_at(self) -> datetime:
        assert self.row.created_at is not None
        return self.row.created_at

    @strawberry.field
    def read(self) -> bool:
        return self.row.read_at is not None


@strawberry.type
class NotificationEdge:
    cursor: str
    node: Notification


@strawberry.type(description="A page of the viewer's notifications, newest first.")
class NotificationConnection:
    page: strawberry.Private[Page[NotificationRow]]

    @strawberry.field
    def edges(self) -> list[NotificationEdge]:
        return [
            NotificationEdge(cursor=cursor, node=Notification.from_row(row))
            for cursor, row in self.page.edges
        ]

    @strawberry.field
    def page_info(self) -> PageInfo:
        return PageInfo.from_page(self.page)

    @strawberry.field
    async def total_count(self) -> int:
        return await self.page.total_count()
