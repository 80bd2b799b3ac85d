"""Relay's Node interface and PageInfo, shared by every type and connection."""

from typing import Any

import strawberry

from schema.compiled import field


@strawberry.interface(
    description="Global object identification (Relay): ids are opaque, stable and type-safe."
)
class Node:
    data: strawberry.Private[dict[str, Any]]
    id: strawberry.ID = field("Opaque global id; pass it to `node(id:)`.")


@strawberry.type(description="Where a page sits in its list (Relay cursor connections).")
class PageInfo:
    data: strawberry.Private[dict[str, Any]]
    has_next_page: bool = field()
    has_previous_page: bool = field("True when this page was asked for with `after`.")
    start_cursor: str | None = field()
    end_cursor: str | None = field("Pass as `after` for the next page.")
