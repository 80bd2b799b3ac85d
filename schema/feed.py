"""The ranked feed: each edge says how it scored and why."""

import strawberry

from resolvers.feed import RankedContent
from resolvers.paging import Page
from schema.content import Content
from schema.node import PageInfo


@strawberry.type(description="One ranked item of a viewer's feed, with why it ranks where it does.")
class FeedEdge:
    item: strawberry.Private[RankedContent]
    cursor: str

    @strawberry.field
    def node(self) -> Content:
        return Content.from_row(self.item.content)

    @strawberry.field(description="Higher ranks first; see docs/ranking.md for the formula.")
    def score(self) -> float:
        return round(self.item.score, 6)

    @strawberry.field(
        description="Human-readable, one per factor that raised or lowered the score, e.g. "
        "'you follow @ada', 'tag #python (+0.8)'."
    )
    def reasons(self) -> list[str]:
        return self.item.reasons


@strawberry.type(description="A page of the viewer's ranked feed.")
class FeedConnection:
    page: strawberry.Private[Page[RankedContent]]

    @strawberry.field
    def edges(self) -> list[FeedEdge]:
        return [FeedEdge(item=item, cursor=cursor) for cursor, item in self.page.edges]

    @strawberry.field
    def page_info(self) -> PageInfo:
        return PageInfo.from_page(self.page)
