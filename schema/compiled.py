"""The types' values come from the compiler (execution/): one SQL statement builds the
JSON of a whole selection, keyed by response key. A type holds that JSON as `data`, and
each of its fields reads its own key; objects, enums and timestamps are handed to
strawberry in the form it serializes (this path serves mutations' payloads and fields
strawberry executes itself; queries are answered from the JSON directly)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
)

_BACKREF = "strawberry-definition"


def value_of(root: Any, info: strawberry.Info) -> Any:
    """The field's value in its object's JSON, as strawberry serializes it."""
    return adapt(root.data[info.path.key], info._raw_info.return_type)


def field(
    description: str | None = None,
    *,
    source: str | None = None,
    derive: Callable[[Any, Any], Any] | None = None,
) -> Any:
    """A field whose value the compiler built (its type is the class annotation). With
    `derive`, the value is `derive(the value of field `source`, the context)`, computed
    in Python for what SQL does not do (rendering Markdown)."""
    metadata = {"source": source, "derive": derive} if derive is not None else {}
    return strawberry.field(resolver=value_of, description=description, metadata=metadata)


def adapt(value: Any, type_: GraphQLOutputType) -> Any:
    if value is None:
        return None
    if isinstance(type_, GraphQLNonNull):
        return adapt(value, type_.of_type)
    if isinstance(type_, GraphQLList):
        return [adapt(item, type_.of_type) for item in value]
    if isinstance(type_, GraphQLObjectType):
        return type_.extensions[_BACKREF].origin(data=value)
    if isinstance(type_, GraphQLEnumType):
        # SQL writes an enum as its GraphQL name (which a value may differ from).
        return type_.extensions[_BACKREF].wrapped_cls[value]
    if isinstance(type_, GraphQLScalarType) and type_.name == "DateTime":
        return datetime.fromisoformat(value)
    return value
