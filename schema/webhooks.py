"""Webhooks: endpoints that receive signed events (Standard Webhooks). ADMIN only."""

from datetime import datetime
from enum import Enum

import strawberry

from db.tables import Webhook as WebhookRow
from resolvers import webhooks
from resolvers.context import Context
from resolvers.ids import encode_id
from schema.node import Node


@strawberry.enum(description="What a webhook is told about.")
class WebhookEvent(Enum):
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
    row: strawberry.Private[WebhookRow]

    @classmethod
    def from_row(cls, row: WebhookRow) -> "Webhook":
        assert row.id is not None
        return cls(id=strawberry.ID(encode_id("Webhook", row.id)), row=row)

    @strawberry.field
    def url(self) -> str:
        return self.row.url

    @strawberry.field
    def events(self) -> list[WebhookEvent]:
        return [WebhookEvent(e) for e in self.row.events]

    @strawberry.field(description="False once disabled after repeated failures.")
    def active(self) -> bool:
        return self.row.active

    @strawberry.field
    def created_at(self) -> datetime:
        assert self.row.created_at is not None
        return self.row.created_at

    @strawberry.field(description="When a delivery last succeeded.")
    def last_delivery_at(self) -> datetime | None:
        return self.row.last_delivery_at

    @strawberry.field(description="Why the last failed delivery failed.")
    def last_error(self) -> str | None:
        return self.row.last_error


@strawberry.type
class WebhookCreated:
    webhook: Webhook
    secret: str = strawberry.field(description="Shown only here: the signing secret (whsec_...).")


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="ADMIN only; FORBIDDEN for others.")
    async def webhooks(self, info: strawberry.Info[Context]) -> list[Webhook]:
        return [Webhook.from_row(row) for row in await webhooks.list_webhooks(info.context)]


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="ADMIN only. The URL must resolve to public addresses; deliveries are "
        "POSTed as JSON, signed with the secret returned here."
    )
    async def create_webhook(
        self, info: strawberry.Info[Context], url: str, events: list[WebhookEvent]
    ) -> WebhookCreated:
        row, secret = await webhooks.create_webhook(info.context, url, [e.value for e in events])
        return WebhookCreated(webhook=Webhook.from_row(row), secret=secret)

    @strawberry.mutation(description="ADMIN only. Returns the id of what was deleted.")
    async def delete_webhook(
        self, info: strawberry.Info[Context], id: strawberry.ID
    ) -> strawberry.ID:
        return strawberry.ID(await webhooks.delete_webhook(info.context, id))


async def webhook_node(info: strawberry.Info[Context], pk: int) -> Webhook | None:
    row = await webhooks.get_webhook(info.context, pk)
    return None if row is None else Webhook.from_row(row)
