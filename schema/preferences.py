"""The viewer's preferences, as they read them back."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db.queries.preferences import PreferencesView
from resolvers import email_settings
from resolvers.context import Context
from schema.email_settings import EmailSettings
from schema.tags import Tag

if TYPE_CHECKING:
    from schema.users import User


@strawberry.type(description="A followed tag and how much it should count, in [-1, 1].")
class TagWeight:
    tag: Tag
    weight: float


@strawberry.type(description="What the viewer follows, mutes and reads; shapes their feed.")
class Preferences:
    view: strawberry.Private[PreferencesView]
    # Whose they are (only their owner ever sees them).
    user_id: strawberry.Private[int | None] = None

    @classmethod
    def from_view(cls, view: PreferencesView, *, user_id: int | None = None) -> "Preferences":
        return cls(view=view, user_id=user_id)

    @strawberry.field
    def followed_tags(self) -> list[TagWeight]:
        return [TagWeight(tag=Tag.from_row(t), weight=w) for t, w in self.view.followed_tags]

    @strawberry.field
    def muted_tags(self) -> list[Tag]:
        return [Tag.from_row(t) for t in self.view.muted_tags]

    @strawberry.field
    def muted_authors(self) -> list[Annotated["User", strawberry.lazy("schema.users")]]:
        from schema.users import User

        return [User.from_row(u) for u in self.view.muted_authors]

    @strawberry.field(description="Empty means every language.")
    def languages(self) -> list[str]:
        return self.view.languages

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.view.updated_at or datetime.now(UTC)

    @strawberry.field(description="Which notifications reach the viewer by email.")
    async def email(self, info: strawberry.Info[Context]) -> EmailSettings:
        assert self.user_id is not None, "Preferences made without their owner's id"
        return EmailSettings(row=await email_settings.settings_of(info.context, self.user_id))
