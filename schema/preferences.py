"""The viewer's preferences, as they read them back."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from schema.compiled import field
from schema.email_settings import EmailSettings
from schema.tags import Tag

if TYPE_CHECKING:
    from schema.users import User


@strawberry.type(description="A followed tag and how much it should count, in [-1, 1].")
class TagWeight:
    data: strawberry.Private[dict[str, Any]]
    tag: Tag = field()
    weight: float = field()


@strawberry.type(description="What the viewer follows, mutes and reads; shapes their feed.")
class Preferences:
    data: strawberry.Private[dict[str, Any]]
    followed_tags: list[TagWeight] = field()
    muted_tags: list[Tag] = field()
    muted_authors: list[Annotated["User", strawberry.lazy("schema.users")]] = field()
    languages: list[str] = field("Empty means every language.")
    updated_at: datetime = field()
    email: EmailSettings = field("Which notifications reach the viewer by email.")
