"""Pieces shared by the seed generators: the plan, clocks, skewed choices, progress."""

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate

Progress = Callable[[str, int, int], None]  # (stage name, done, total)

# Fixed rather than "now" so the same plan always produces the same bytes.
REFERENCE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400
YEAR = 365 * DAY
# Contents are spread over the last CONTENT_SPAN before the reference time; users
# sign up over the longer USER_SPAN, so the earliest posts already have authors.
CONTENT_SPAN = 2 * YEAR
USER_SPAN = 3 * YEAR
# How often a stage reports progress: often enough for a bar, cheap per row.
PROGRESS_EVERY = 10_000


@dataclass(frozen=True, slots=True)
class SeedPlan:
    users: int
    contents: int
    seed: int = 42
    # Every timestamp lies before this instant; part of the plan, never the wall clock.
    reference: datetime = field(default=REFERENCE_TIME)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("a seed plan needs at least one user")
        if self.contents < 0:
            raise ValueError("a seed plan cannot have a negative number of contents")
        if self.reference.tzinfo is None:
            raise ValueError("the reference time must be timezone-aware")


def stream(plan: SeedPlan, name: str) -> random.Random:
    """An independent random stream per concern, so each generator is reproducible
    on its own and changing one never shifts the values another draws."""
    return random.Random(f"{plan.seed}/{name}")


def timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def zipf_cumulative(n: int, exponent: float, offset: float) -> list[float]:
    """Cumulative weights (rank + offset) ** -exponent: a Zipf-like head and long tail."""
    return list(accumulate((rank + offset) ** -exponent for rank in range(n)))


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


def pick(rng: random.Random, cum: Sequence[float], limit: int | None = None) -> int:
    """An index drawn by cumulative weights, among the first `limit` entries if given.

    Zero-weight entries are never drawn, as long as the prefix has any weight."""
    end = len(cum) if limit is None else limit
    return bisect_right(cum, rng.random() * cum[end - 1], 0, end)


class Ticker:
    """Calls the progress callback every `every` steps rather than per row."""

    __slots__ = ("_next", "_reported", "done", "every", "progress", "stage", "total")

    def __init__(
        self, progress: Progress | None, stage: str, total: int, *, every: int = PROGRESS_EVERY
    ) -> None:
        self.progress = progress
        self.stage = stage
        self.total = total
        self.every = every
        self.done = 0
        self._next = every
        self._reported = -1
        self._report(0)

    def _report(self, done: int) -> None:
        if self.progress is not None and done != self._reported:
            self._reported = done
            self.progress(self.stage, done, self.total)

    def step(self, count: int = 1) -> None:
        self.done += count
        if self.done >= self._next:
            self._next = self.done + self.every
            self._report(self.done)

    def finish(self) -> None:
        self._report(self.total)
