"""The root Query type and the Schema object."""

from typing import Any

import strawberry

from resolvers import content, feed, notifications, search, tags, users, validation
from resolvers.context import Context
from resolvers.ids import decode_id
from schema.arguments import given, page_size
from schema.content import Content, ContentConnection, ContentFilter
from schema.enums import ContentOrder
from schema.feed import FeedConnection
from schema.node import Node
from schema.notifications import Notification, NotificationConnection
from schema.tags import Tag, TagConnection
from schema.users import User
from schema.webhooks import WebhookQueries, webhook_node


def _filter_query(filter: ContentFilter | None) -> content.ContentQuery:
    if filter is None:
        return content.ContentQuery()
    return content.ContentQuery(
        author_handle=validation.normalize_handle(filter.author_handle)
        if filter.author_handle
        else None,
        tag_names=tuple(filter.tags) if filter.tags else None,
        status=filter.status.value if filter.status else None,
        language=filter.language.strip().lower() if filter.language else None,
    )


def contents_request(
    filter: ContentFilter | None,
    order_by: ContentOrder | None,
    first: int | None,
    after: str | None,
) -> dict[str, Any]:
    """The arguments of `contents` as resolvers take them (both read paths use this)."""
    return {
        "query": _filter_query(given(filter)),
        "order": content.ContentOrder((order_by or ContentOrder.NEWEST).name),
        "first": page_size(first, 20),
        "after": given(after),
    }


def feed_request(first: int | None, after: str | None) -> dict[str, Any]:
    """The arguments of `feed` as resolvers take them (both read paths use this)."""
    return {"first": page_size(first, 20), "after": given(after)}


@strawberry.type
class Query(WebhookQueries):
    @strawberry.field(
        description="Any object by its global id; null when the viewer may not see it."
    )
    async def node(self, info: strawberry.Info[Context], id: strawberry.ID) -> Node | None:
        type_name, pk = decode_id(id)
        if type_name == "Content":
            found = await content.get_content(info.context, id)
            return Content.from_row(found) if found else None
        if type_name == "User":
            user = await users.get_user(info.context, id)
            return User.from_row(user) if user else None
        if type_name == "Tag":
            tag = await tags.get_tag(info.context, id)
            return Tag.from_row(tag) if tag else None
        if type_name == "Webhook":
            return await webhook_node(info, pk)
        found_notification = await notifications.get_notification(info.context, pk)
        return Notification.from_row(found_notification) if found_notification else None

    @strawberry.field(description="The signed-in user. Null when anonymous.")
    async def viewer(self, info: strawberry.Info[Context]) -> User | None:
        found = await users.get_viewer(info.context)
        return User.from_row(found) if found else None

    @strawberry.field(description="A user by handle (with or without '@').")
    async def user(self, info: strawberry.Info[Context], handle: str) -> User | None:
        found = await users.get_user_by_handle(info.context, handle)
        return User.from_row(found) if found else None

    @strawberry.field(
        description="Null when it does not exist or the viewer may not see it: never an error "
        "that tells which."
    )
    async def content(self, info: strawberry.Info[Context], id: strawberry.ID) -> Content | None:
        found = await content.get_content(info.context, id)
        return Content.from_row(found) if found else None

    @strawberry.field(description="Content the viewer may see, filtered and ordered.")
    async def contents(
        self,
        info: strawberry.Info[Context],
        filter: ContentFilter | None = strawberry.UNSET,
        order_by: ContentOrder | None = ContentOrder.NEWEST,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> ContentConnection:
        page = await content.list_contents(
            info.context, **contents_request(filter, order_by, first, after)
        )
        return ContentConnection(page=page)

    @strawberry.field(
        description="Ranked for the viewer; anonymous viewers get popular and fresh PUBLIC content."
    )
    async def feed(
        self,
        info: strawberry.Info[Context],
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> FeedConnection:
        page = await feed.feed(
            info.context, **feed_request(first, after), load=feed.published_rows(info.context)
        )
        return FeedConnection(page=page)

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
        page = await search.search(
            info.context, query=query, first=page_size(first, 20), after=given(after)
        )
        return ContentConnection(page=page)

    @strawberry.field(description="Every tag, by name.")
    async def tags(
        self,
        info: strawberry.Info[Context],
        first: int | None = 50,
        after: str | None = strawberry.UNSET,
    ) -> TagConnection:
        page = await tags.list_tags(info.context, first=page_size(first, 50), after=given(after))
        return TagConnection(page=page)

    @strawberry.field(description="The viewer's own, newest first; UNAUTHENTICATED when anonymous.")
    async def notifications(
        self,
        info: strawberry.Info[Context],
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
        unread_only: bool | None = False,
    ) -> NotificationConnection:
        page = await notifications.list_notifications(
            info.context,
            first=page_size(first, 20),
            after=given(after),
            unread_only=bool(unread_only),
        )
        return NotificationConnection(page=page)
