"""Relay-style forward paging shared by every connection."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from resolvers.errors import BadUserInput

T = TypeVar("T")


def check_first(first: int, max_page_size: int) -> int:
    if first < 0:
        raise BadUserInput("`first` must be 0 or more")
    if first > max_page_size:
        raise BadUserInput(f"`first` must be at most {max_page_size}; page with `after` for more")
    return first


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page: (cursor, item) pairs, whether more follow, and a count computed only
    when a client asks for totalCount (a count over a large list is not free)."""

    edges: list[tuple[str, T]]
    has_next: bool
    has_previous: bool
    total_count: Callable[[], Awaitable[int]]

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0][0] if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1][0] if self.edges else None
