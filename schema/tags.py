"""The Tag type and its connection."""

import strawberry

from db.tables import Tag as TagRow
from resolvers.context import Context
from resolvers.ids import encode_id
from resolvers.paging import Page
from resolvers.tags import affinities
from schema.node import Node, PageInfo


@strawberry.type(description="A topic content is filed under, e.g. `python`.")
class Tag(Node):
    row: strawberry.Private[TagRow]

    @classmethod
    def from_row(cls, row: TagRow) -> "Tag":
        assert row.id is not None
        return cls(id=strawberry.ID(encode_id("Tag", row.id)), row=row)

    @strawberry.field(description="Lowercase, without '#'.")
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="Published content the viewer may see that carries this tag.")
    async def content_count(self, info: strawberry.Info[Context]) -> int:
        assert self.row.id is not None
        return await info.context.loaders.content_count_by_tag_id.load(self.row.id)

    @strawberry.field(
        description="How much the viewer likes this tag, in [-1, 1]: explicit weight, else learned "
        "from habits; 0 for anonymous."
    )
    async def viewer_affinity(self, info: strawberry.Info[Context]) -> float:
        assert self.row.id is not None
        (score,) = await affinities(info.context, [self.row.id])
        return score


@strawberry.type
class TagEdge:
    cursor: str
    node: Tag


@strawberry.type(description="A page of tags, by name.")
class TagConnection:
    page: strawberry.Private[Page[TagRow]]

    @strawberry.field
    def edges(self) -> list[TagEdge]:
        return [TagEdge(cursor=cursor, node=Tag.from_row(row)) for cursor, row in self.page.edges]

    @strawberry.field
    def page_info(self) -> PageInfo:
        return PageInfo.from_page(self.page)

    @strawberry.field(description="How many tags there are in all.")
    async def total_count(self) -> int:
        return await self.page.total_count()
