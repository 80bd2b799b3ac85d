"""The ranked feed: each edge says how it scored and why."""

from typing import Any

import strawberry

from schema.compiled import field
from schema.content import Content
from schema.node import PageInfo


@strawberry.type(description="One ranked item of a viewer's feed, with why it ranks where it does.")
class FeedEdge:
    data: strawberry.Private[dict[str, Any]]
    cursor: str = field()
    node: Content = field()
    score: float = field("Higher ranks first; see docs/ranking.md for the formula.")
    reasons: list[str] = field(
        "Human-readable, one per factor that raised or lowered the score, e.g. "
        "'you follow @ada', 'tag #python (+0.8)'."
    )


@strawberry.type(description="A page of the viewer's ranked feed.")
class FeedConnection:
    data: strawberry.Private[dict[str, Any]]
    edges: list[FeedEdge] = field()
    page_info: PageInfo = field()
