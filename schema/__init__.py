"""The GraphQL surface: types, inputs, enums and the Schema object. No SQL here."""

import strawberry

from schema.content import Content
from schema.mutations import Mutation
from schema.notifications import Notification
from schema.root import Query
from schema.tags import Tag
from schema.users import User


def build_schema(*, extensions: list[type] | None = None) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Content, User, Tag, Notification],
        extensions=extensions or [],
    )


schema = build_schema()
