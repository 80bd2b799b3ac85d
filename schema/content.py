"""The Content type, its connection, and the filter input."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.tables import Content as ContentRow
from resolvers.content import tags_of
from resolvers.context import Context
from resolvers.ids import encode_id
from resolvers.paging import Page
from resolvers.render import render_markdown
from schema.enums import ContentStatus, Visibility
from schema.node import Node, PageInfo
from schema.tags import Tag

if TYPE_CHECKING:
    from schema.users import User


@strawberry.type(description="An article: Markdown body, tags, author and reactions.")
class Content(Node):
    row: strawberry.Private[ContentRow]

    @classmethod
    def from_row(cls, row: ContentRow) -> "Content":
        assert row.id is not None
        return cls(id=strawberry.ID(encode_id("Content", row.id)), row=row)

    @strawberry.field
    def title(self) -> str:
        return self.row.title

    @strawberry.field
    def summary(self) -> str | None:
        return self.row.summary

    @strawberry.field(description="Markdown source.")
    def body(self) -> str:
        return self.row.body

    @strawberry.field(
        description="Rendered and sanitized HTML: no script, style, iframe, event-handler "
        "attribute or javascript: URL survives. Images are left out unless the gateway is "
        "set to keep them (GATEWAY_REMOTE_IMAGES): a reader's browser would fetch them from "
        "wherever they point."
    )
    def body_html(self, info: strawberry.Info[Context]) -> str:
        return render_markdown(self.row.body, images=info.context.safeguards.images)

    @strawberry.field
    def status(self) -> ContentStatus:
        return ContentStatus(self.row.status)

    @strawberry.field
    def visibility(self) -> Visibility:
        return Visibility(self.row.visibility)

    @strawberry.field(description="ISO 639-1 code, e.g. `en`.")
    def language(self) -> str:
        return self.row.language

    @strawberry.field
    async def author(
        self, info: strawberry.Info[Context]
    ) -> Annotated["User", strawberry.lazy("schema.users")]:
        from schema.users import User

        author = await info.context.loaders.user_by_id.load(self.row.author_id)
        assert author is not None, "contents.author_id is a foreign key"
        return User.from_row(author)

    @strawberry.field(description="Ordered by the viewer's affinity, highest first, then by name.")
    async def tags(self, info: strawberry.Info[Context]) -> list[Tag]:
        return [Tag.from_row(tag) for tag in await tags_of(info.context, self.row)]

    @strawberry.field
    def reaction_count(self) -> int:
        return self.row.reaction_count

    @strawberry.field(description="False for anonymous viewers.")
    async def viewer_has_reacted(self, info: strawberry.Info[Context]) -> bool:
        assert self.row.id is not None
        return await info.context.loaders.viewer_reacted_by_content_id.load(self.row.id)

    @strawberry.field
    def created_at(self) -> datetime:
        assert self.row.created_at is not None
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        assert self.row.updated_at is not None
        return self.row.updated_at

    @strawberry.field(description="When it was first published; null for drafts.")
    def published_at(self) -> datetime | None:
        return self.row.published_at


@strawberry.type
class ContentEdge:
    cursor: str
    node: Content


@strawberry.type(description="A page of content the viewer may see.")
class ContentConnection:
    page: strawberry.Private[Page[ContentRow]]

    @strawberry.field
    def edges(self) -> list[ContentEdge]:
        return [
            ContentEdge(cursor=cursor, node=Content.from_row(row))
            for cursor, row in self.page.edges
        ]

    @strawberry.field
    def page_info(self) -> PageInfo:
        return PageInfo.from_page(self.page)

    @strawberry.field(description="How many items the whole list holds for this viewer.")
    async def total_count(self) -> int:
        return await self.page.total_count()


@strawberry.input(description="Narrows a content list; every condition given must hold.")
class ContentFilter:
    author_handle: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Content carrying any of these tags."
    )
    status: ContentStatus | None = strawberry.UNSET
    language: str | None = strawberry.field(
        default=strawberry.UNSET, description="ISO 639-1 code, e.g. `en`."
    )
