"""Webhooks: endpoints that receive signed events (Standard Webhooks). ADMIN only."""

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from resolvers import webhooks
from resolvers.context import Context
from schema.compiled import field
from schema.node import Node


@strawberry.enum(description="What a webhook is told about.")
class WebhookEvent(Enum):
    """Values as Standard Webhooks payloads and the webhooks table name them."""

    CONTENT_PUBLISHED = "content.published"
    CONTENT_UPDATED = "content.updated"
    CONTENT_ARCHIVED = "content.archived"
    CONTENT_DELETED = "content.deleted"
    USER_REGISTERED = "user.registered"


@strawberry.type(
    description="An endpoint that receives signed events (Standard Webhooks). ADMIN only. "
    "Only PUBLIC content's data is sent."
)
class Webhook(Node):
    data: strawberry.Private[dict[str, Any]]
    url: str = field()
    events: list[WebhookEvent] = field()
    active: bool = field("False once disabled after repeated failures.")
    created_at: datetime = field()
    last_delivery_at: datetime | None = field("When a delivery last succeeded.")
    last_error: str | None = field("Why the last failed delivery failed.")


@strawberry.type
class WebhookCreated:
    webhook_id: strawberry.Private[int]
    secret: str = strawberry.field(description="Shown only here: the signing secret (whsec_...).")

    @strawberry.field
    async def webhook(self, info: strawberry.Info[Context]) -> Webhook:
        return await info.context.reads.entity(info, "Webhook", self.webhook_id)  # type: ignore[no-any-return]


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="ADMIN only; FORBIDDEN for others.")
    async def webhooks(self, info: strawberry.Info[Context]) -> list[Webhook]:
        return await info.context.reads.field(info)  # type: ignore[no-any-return]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="ADMIN only. The URL must resolve to public addresses; deliveries are "
        "POSTed as JSON, signed with the secret returned here."
    )
    async def create_webhook(
        self, info: strawberry.Info[Context], url: str, events: list[WebhookEvent]
    ) -> WebhookCreated:
        pk, secret = await webhooks.create_webhook(info.context, url, [e.value for e in events])
        return WebhookCreated(webhook_id=pk, secret=secret)

    @strawberry.mutation(description="ADMIN only. Returns the id of what was deleted.")
    async def delete_webhook(
        self, info: strawberry.Info[Context], id: strawberry.ID
    ) -> strawberry.ID:
        return strawberry.ID(await webhooks.delete_webhook(info.context, id))
