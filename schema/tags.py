"""The Tag type and its connection."""

from typing import Any

import strawberry

from schema.compiled import field
from schema.node import Node, PageInfo


@strawberry.type(description="A topic content is filed under, e.g. `python`.")
class Tag(Node):
    data: strawberry.Private[dict[str, Any]]
    name: str = field("Lowercase, without '#'.")
    content_count: int = field("Published content the viewer may see that carries this tag.")
    viewer_affinity: float = field(
        "How much the viewer likes this tag, in [-1, 1]: explicit weight, else learned from "
        "habits; 0 for anonymous."
    )


@strawberry.type
class TagEdge:
    data: strawberry.Private[dict[str, Any]]
    cursor: str = field()
    node: Tag = field()


@strawberry.type(description="A page of tags, by name.")
class TagConnection:
    data: strawberry.Private[dict[str, Any]]
    edges: list[TagEdge] = field()
    page_info: PageInfo = field()
    total_count: int = field("How many tags there are in all.")
