"""Relay's Node interface and PageInfo, shared by every type and connection."""

from typing import Any

import strawberry

from resolvers.paging import Page


@strawberry.interface(
    description="Global object identification (Relay): ids are opaque, stable and type-safe."
)
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id; pass it to `node(id:)`.")


@strawberry.type(description="Where a page sits in its list (Relay cursor connections).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool = strawberry.field(
        description="True when this page was asked for with `after`."
    )
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")

    @classmethod
    def from_page(cls, page: Page[Any]) -> "PageInfo":
        return cls(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.start_cursor,
            end_cursor=page.end_cursor,
        )
