"""The Content type, its connection, and the filter input."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from resolvers.render import render_markdown
from schema.compiled import field
from schema.enums import ContentStatus, Visibility
from schema.node import Node, PageInfo
from schema.tags import Tag

if TYPE_CHECKING:
    from schema.users import User


@strawberry.type(description="An article: Markdown body, tags, author and reactions.")
class Content(Node):
    data: strawberry.Private[dict[str, Any]]
    title: str = field()
    summary: str | None = field()
    body: str = field("Markdown source.")
    body_html: str = field(
        "Rendered and sanitized HTML: no script, style, iframe, event-handler attribute or "
        "javascript: URL survives. Images are left out unless the gateway is set to keep them "
        "(GATEWAY_REMOTE_IMAGES): a reader's browser would fetch them from wherever they point.",
        source="body",
        derive=lambda body, ctx: render_markdown(body, images=ctx.safeguards.images),
    )
    status: ContentStatus = field()
    visibility: Visibility = field()
    language: str = field("ISO 639-1 code, e.g. `en`.")
    author: Annotated["User", strawberry.lazy("schema.users")] = field()
    tags: list[Tag] = field("Ordered by the viewer's affinity, highest first, then by name.")
    reaction_count: int = field()
    reading_time_minutes: int = field(
        "Minutes a reader needs for the body at 230 words a minute, rounded up; at least 1."
    )
    viewer_has_reacted: bool = field("False for anonymous viewers.")
    created_at: datetime = field()
    updated_at: datetime = field()
    published_at: datetime | None = field("When it was first published; null for drafts.")


@strawberry.type
class ContentEdge:
    data: strawberry.Private[dict[str, Any]]
    cursor: str = field()
    node: Content = field()


@strawberry.type(description="A page of content the viewer may see.")
class ContentConnection:
    data: strawberry.Private[dict[str, Any]]
    edges: list[ContentEdge] = field()
    page_info: PageInfo = field()
    total_count: int = field("How many items the whole list holds for this viewer.")


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
