"""Which notifications reach the viewer by email, and how often the digest comes."""

from enum import Enum
from typing import Any

import strawberry

from resolvers.email_settings import EmailSettingsChange
from schema.arguments import given
from schema.compiled import field


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
    data: strawberry.Private[dict[str, Any]]
    new_follower: EmailChoice = field("Default IMMEDIATELY.")
    reaction: EmailChoice = field("Default DIGEST.")
    new_content_from_followed: EmailChoice = field("Default IMMEDIATELY.")
    digest: DigestFrequency = field(
        "The digest: the viewer's top-ranked new items and unread notifications since the "
        "last one. Default OFF; none is sent when nothing is new."
    )


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
