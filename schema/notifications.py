"""Notifications: someone followed you, reacted, or published."""

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from schema.compiled import field
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
    data: strawberry.Private[dict[str, Any]]
    kind: NotificationKind = field()
    actor: Annotated["User", strawberry.lazy("schema.users")] | None = field("Who did it.")
    content: Annotated["Content", strawberry.lazy("schema.content")] | None = field(
        "What it is about; null if it is gone or no longer visible."
    )
    created_at: datetime = field()
    read: bool = field()


@strawberry.type
class NotificationEdge:
    data: strawberry.Private[dict[str, Any]]
    cursor: str = field()
    node: Notification = field()


@strawberry.type(description="A page of the viewer's notifications, newest first.")
class NotificationConnection:
    data: strawberry.Private[dict[str, Any]]
    edges: list[NotificationEdge] = field()
    page_info: PageInfo = field()
    total_count: int = field()
