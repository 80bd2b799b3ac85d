"""The User type."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from schema.compiled import field, value_of
from schema.enums import Role
from schema.node import Node
from schema.preferences import Preferences

if TYPE_CHECKING:
    from schema.content import ContentConnection


@strawberry.type(description="A person who reads, writes and reacts.")
class User(Node):
    data: strawberry.Private[dict[str, Any]]
    handle: str = field("Unique, lowercase; what @mentions use.")
    display_name: str = field()
    bio: str | None = field()
    role: Role = field()
    email: str | None = field("The viewer's own, or any to an ADMIN; null for every other viewer.")
    email_verified: bool | None = field(
        "The viewer's own, or any to an ADMIN; null for every other viewer."
    )
    created_at: datetime = field()
    follower_count: int = field()
    following_count: int = field()
    viewer_follows: bool = field("False for anonymous viewers.")
    preferences: Preferences | None = field("The viewer's own only; null for every other viewer.")

    @strawberry.field(description="Only what the viewer may see, newest first.")
    def contents(
        self,
        info: strawberry.Info,
        first: int | None = 20,
        after: str | None = strawberry.UNSET,
    ) -> Annotated["ContentConnection", strawberry.lazy("schema.content")]:
        # The page was read with these arguments when the selection was compiled.
        return value_of(self, info)  # type: ignore[no-any-return]
