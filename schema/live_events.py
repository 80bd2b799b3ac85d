"""What resumable subscriptions yield: an event with the cursor to resume after it."""

from typing import Any

import strawberry

from schema.compiled import field
from schema.content import Content
from schema.notifications import Notification


@strawberry.type(
    description="A published content as a live event, with the cursor to resume after it."
)
class ContentEvent:
    data: strawberry.Private[dict[str, Any]]
    cursor: str = field("Opaque. Pass it back as `after` to resume right after this event.")
    content: Content = field()


@strawberry.type(description="A notification as a live event, with the cursor to resume after it.")
class NotificationEvent:
    data: strawberry.Private[dict[str, Any]]
    cursor: str = field("Opaque. Pass it back as `after` to resume right after this event.")
    notification: Notification = field()
