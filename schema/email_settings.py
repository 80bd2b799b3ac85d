"""Which notifications reach the viewer by email, and how often the digest comes."""

from enum import Enum

import strawberry

from db.tables import EmailSettings as EmailSettingsRow
from resolvers.email_settings import EmailSettingsChange
from schema.arguments import given


@strawberry.enum(description="How a kind of notification reaches the viewer by email.")
class EmailChoice(Enum):
    IMMEDIATELY = strawberry.enum_value("IMMEDIATELY", description="An email as it happens.")
    DIGEST = strawberry.enum_value("DIGEST", description="Collected into the digest.")
    NEVER = strawberry.enum_value("NEVER", description="No email.")


@strawberry.enum(description="How often the digest comes.")
class DigestFrequency(Enum):
    OFF = "OFF"
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"


@strawberry.type(
    description="Which notifications reach the viewer by email, and how often the digest "
    "comes. Email goes only to a verified address."
)
class EmailSettings:
    row: strawberry.Private[EmailSettingsRow]

    @strawberry.field(description="Default IMMEDIATELY.")
    def new_follower(self) -> EmailChoice:
        return EmailChoice(self.row.new_follower)

    @strawberry.field(description="Default DIGEST.")
    def reaction(self) -> EmailChoice:
        return EmailChoice(self.row.reaction)

    @strawberry.field(description="Default IMMEDIATELY.")
    def new_content_from_followed(self) -> EmailChoice:
        return EmailChoice(self.row.new_content_from_followed)

    @strawberry.field(
        description="The digest: the viewer's top-ranked new items and unread notifications "
        "since the last one. Default OFF; none is sent when nothing is new."
    )
    def digest(self) -> DigestFrequency:
        return DigestFrequency(self.row.digest)


@strawberry.input(description="Fields left out keep their stored value.")
class EmailSettingsInput:
    new_follower: EmailChoice | None = strawberry.UNSET
    reaction: EmailChoice | None = strawberry.UNSET
    new_content_from_followed: EmailChoice | None = strawberry.UNSET
    digest: DigestFrequency | None = strawberry.UNSET

    def change(self) -> EmailSettingsChange:
        def value(choice: Enum | None) -> str | None:
            chosen = given(choice)
            return None if chosen is None else str(chosen.value)

        return EmailSettingsChange(
            new_follower=value(self.new_follower),
            reaction=value(self.reaction),
            new_content_from_followed=value(self.new_content_from_followed),
            digest=value(self.digest),
        )
