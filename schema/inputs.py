"""Mutation inputs and payloads."""

from datetime import datetime

import strawberry

from resolvers.context import Context
from resolvers.viewer import Viewer
from schema.email_settings import EmailSettingsInput
from schema.enums import Visibility
from schema.users import User


@strawberry.input(description="Sign-up details.")
class RegisterInput:
    handle: str = strawberry.field(description="3-30 of a-z, 0-9 and '_'; stored lowercase.")
    email: str
    password: str = strawberry.field(description="At least 10 characters, not the handle.")
    display_name: str


@strawberry.input(description="login is a handle or an email.")
class LoginInput:
    login: str
    password: str


@strawberry.type(description="A signed-in session: send the token as `Authorization: Bearer`.")
class AuthPayload:
    token: str
    expires_at: datetime
    signed_in: strawberry.Private[Viewer]

    @strawberry.field
    async def viewer(self, info: strawberry.Info[Context]) -> User:
        assert self.signed_in.id is not None
        return await info.context.reads.entity(  # type: ignore[no-any-return]
            info, "User", self.signed_in.id, viewer=self.signed_in
        )


@strawberry.input(description="A new article; it starts as a DRAFT.")
class CreateContentInput:
    title: str = strawberry.field(description="1-200 characters.")
    summary: str | None = strawberry.UNSET
    body: str = strawberry.field(description="Markdown, up to 100,000 characters.")
    tags: list[str] | None = strawberry.field(
        default_factory=list, description="Up to 10; created on first use, normalized to lowercase."
    )
    visibility: Visibility | None = Visibility.PUBLIC
    language: str | None = strawberry.field(default="en", description="ISO 639-1 code.")


@strawberry.input(description="Changes to an article; fields left out keep their value.")
class UpdateContentInput:
    title: str | None = strawberry.UNSET
    summary: str | None = strawberry.UNSET
    body: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the tags when given."
    )
    visibility: Visibility | None = strawberry.UNSET
    language: str | None = strawberry.UNSET


@strawberry.input(description="weight in [-1, 1]")
class TagWeightInput:
    tag: str
    weight: float


@strawberry.input(description="A list given replaces the stored one; a list left out keeps it.")
class PreferencesInput:
    followed_tags: list[TagWeightInput] | None = strawberry.UNSET
    muted_tags: list[str] | None = strawberry.UNSET
    muted_authors: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Handles."
    )
    languages: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="ISO 639-1 codes; empty means every language."
    )
    email: EmailSettingsInput | None = strawberry.field(
        default=strawberry.UNSET, description="Fields left out keep their stored value."
    )
