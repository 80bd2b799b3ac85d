"""Text a client sends must be text Postgres and JSON can hold: no NUL character (U+0000)
and no lone surrogate (half of a UTF-16 pair, which no UTF-8 can encode). Either one used
to travel as far as the database driver and end in a 500; both are refused up front with
BAD_USER_INPUT naming where they are, in the document's string literals (a validation
rule) and in the variables (before the operation is measured)."""

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule

from resolvers.errors import BadUserInput

NUL = "\x00"


def _problem(text: str) -> str | None:
    if NUL in text:
        return "a NUL character (U+0000)"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "a lone surrogate (half of a UTF-16 pair)"
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def check_variables(variables: Mapping[str, Any] | None) -> None:
    """BAD_USER_INPUT naming the first variable that holds text no database can store."""
    for name, value in (variables or {}).items():
        for path, text in _strings(value, f"${name}"):
            problem = _problem(text)
            if problem is not None:
                raise BadUserInput(
                    f"Variable `{path}` holds {problem}, which text here cannot contain: remove it"
                )


class TextLiteralsRule(ValidationRule):
    """String literals in the document hold no NUL or lone surrogate (from escapes)."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        problem = _problem(node.value)
        if problem is not None:
            self.report_error(
                GraphQLError(
                    f"This string holds {problem}, which text here cannot contain: remove it",
                    node,
                    extensions={"code": BadUserInput.code},
                )
            )
