"""The User type."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.tables import User as UserRow
from resolvers import users
from resolvers.context import Context
from resolvers.ids import encode_id
from resolvers.viewer import Viewer
from schema.arguments import given, page_size
from schema.enums import Role
from schema.node import Node
from schema.preferences import Preferences

if TYPE_CHECKING:
    from schema.content import ContentConnection


@strawberry.type(description="A person who reads, writes and reacts.")
class User(Node):
    row: strawberry.Private[UserRow]
    # Set on the user a token was just issued for (register, login): the response is
    # theirs, so it shows them what they would see of themselves once signed in.
    signed_in_as_self: strawberry.Private[bool] = False

    @classmethod
    def from_row(cls, row: UserRow, *, signed_in_as_self: bool = False) -> "User":
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("User", row.id)),
            row=row,
            signed_in_as_self=signed_in_as_self,
        )

    def _viewer(self, info: strawberry.Info[Context]) -> Viewer:
        if self.signed_in_as_self:
            return Viewer(id=self.pk, role=self.row.role)
        return info.context.viewer

    @property
    def pk(self) -> int:
        assert self.row.id is not None
        return self.row.id

    @strawberry.field(description="Unique, lowercase; what @mentions use.")
    def handle(self) -> str:
        return self.row.handle

    @strawberry.field
    def display_name(self) -> str:
        return self.row.display_name

    @strawberry.field
    def bio(self) -> str | None:
        return self.row.bio

    @strawberry.field
    def role(self) -> Role:
        return Role(self.row.role)

    @strawberry.field(
        description="The viewer's own, or any to an ADMIN; null for every other viewer."
    )
    def email(self, info: strawberry.Info[Context]) -> str | None:
        return users.email_of(self._viewer(info), self.row)

    @strawberry.field(
        description="The viewer's own, or any to an ADMIN; null for every other viewer."
    )
    def email_verified(self, info: strawberry.Info[Context]) -> bool | None:
        return users.email_verified_of(self._viewer(info), self.row)

    @strawberry.field
    def created_at(self) -> datetime:
        assert self.row.created_at is not None
        return self.row.created_at

    @strawberry.field
    async def follower_count(self, info: strawberry.Info[Context]) -> int:
        return await info.context.loaders.follower_count_by_user_id.load(self.pk)

    @strawberry.field
    async def following_count(self, info: strawberry.Info[Context]) -> int:
        return await info.context.loaders.following_count_by_user_id.load(self.pk)

    @strawberry.field(description="False for anonymous viewers.")
    async def viewer_follows(self, info: strawberry.Info[Context]) -> bool:
        return await info.context.loaders.viewer_follows_by_user_id.load(self.pk)

    @strawberry.field(description="The viewer's own only; null for every other viewer.")
    async def preferences(self, info: strawberry.Info[Context]) -> Preferences | None:
        view = await users.preferences_of(info.context, self.row, viewer=self._viewer(info))
        return None if view is None else Preferences.from_view(view, user_id=self.pk)

    @strawberry.field(description="Only what the viewer may see, newest first.")
    async def contents(
        self,
        info: strawberry.Info[Context],
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Annotated["ContentConnection", strawberry.lazy("schema.content")]:
        from schema.content import ContentConnection

        page = await users.contents_of(
            info.context, self.row, first=page_size(first, 20), after=given(after)
        )
        return ContentConnection(page=page)
