"""The root Subscription type: live updates over WebSocket."""

from collections.abc import AsyncGenerator

import strawberry
from graphql import DocumentNode

from resolvers import live
from resolvers.context import Context
from schema.arguments import given
from schema.content import Content
from schema.live_broadcast import Member, Outlet, broadcaster_of, outlet
from schema.live_sharing import delivering, document_key
from schema.notifications import Notification


def _broadcast_member(
    info: strawberry.Info[Context], tags: list[str] | None, target: Outlet
) -> Member | None:
    """This operation on the broadcast path (schema/live_broadcast.py), if its document
    is shareable; None keeps it on the per-socket path."""
    raw = info._raw_info
    variables = dict(info.variable_values)
    key = document_key(raw.schema, raw.operation, raw.fragments, variables)
    if key is None:
        return None
    viewer = live.LiveViewer.of(info.context, tags)
    live.bus_of(info.context)
    document = DocumentNode(definitions=(raw.operation, *raw.fragments.values()))
    name = raw.operation.name.value if raw.operation.name else None
    return Member(info.context, viewer, document, key, variables, name, target)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Each newly published content the viewer may see and has not muted; with "
        "tags, only content carrying one of them."
    )
    async def content_published(
        self, info: strawberry.Info[Context], tags: list[str] | None = strawberry.UNSET
    ) -> AsyncGenerator[Content, None]:
        target = outlet.get()
        member = _broadcast_member(info, given(tags), target) if target is not None else None
        if member is not None:
            # Its events are written to the socket by the broadcaster; this operation
            # only waits for the end (and raises what ended it).
            broadcaster_of(live.bus_of(info.context), info._raw_info.schema).join(member)
            await member.wait()
            return
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
