"""The GraphQL surface: types, inputs, enums and the Schema object. No SQL here."""

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from schema.content import Content
from schema.mutations import Mutation
from schema.notifications import Notification
from schema.root import Query
from schema.subscriptions import Subscription
from schema.tags import Tag
from schema.users import User
from schema.webhooks import Webhook


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry logs every error, client mistakes included, with tracebacks; the
        error classifier (gateway/errors.py) logs what deserves it, with the request id."""


def build_schema(*, extensions: list[Any] | None = None) -> strawberry.Schema:
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Content, User, Tag, Notification, Webhook],
        extensions=extensions or [],
    )
