"""Enums of the public API; values match the database's."""

from enum import Enum

import strawberry


@strawberry.enum(description="What a user may do beyond their own things.")
class Role(Enum):
    MEMBER = "MEMBER"
    ADMIN = "ADMIN"


@strawberry.enum(
    description="Where content is in its life: only PUBLISHED content is listed to others."
)
class ContentStatus(Enum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


@strawberry.enum(
    description="PUBLIC: anyone. MEMBERS: any signed-in viewer. PRIVATE: its author (and admins) only."
)
class Visibility(Enum):
    PUBLIC = "PUBLIC"
    MEMBERS = "MEMBERS"
    PRIVATE = "PRIVATE"


@strawberry.enum(description="How a content list is ordered.")
class ContentOrder(Enum):
    NEWEST = strawberry.enum_value("NEWEST", description="Most recently published first.")
    OLDEST = strawberry.enum_value("OLDEST", description="Earliest published first.")
    POPULAR = strawberry.enum_value("POPULAR", description="Most reactions first.")
