"""Reading optional arguments: UNSET (left out) and null both mean "not given"."""

from typing import TypeVar

import strawberry

T = TypeVar("T")


def given(value: T | None) -> T | None:
    return None if value is strawberry.UNSET else value


def page_size(first: int | None, default: int) -> int:
    return default if first is None or first is strawberry.UNSET else first
