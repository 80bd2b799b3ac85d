"""A time budget shared by every statement of one request.

The gateway opens a budget when a request starts (gateway/graphql_view.py); each session
and statement of that request then runs under what is left of it, and the database
cancels whatever is still running when it runs out. So a request holds a connection for
at most its budget, however many statements it makes, where the statement timeout alone
would allow each of them that long. Outside a budget (migrations, seeding, background
work) nothing changes."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

from db.errors import StatementTimeout

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("db_deadline", default=None)


class BudgetExhausted(StatementTimeout):
    """The request used up its time budget; its statements were cancelled (or not run)."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"the request used up its database time budget of {budget:g} s")
        self.budget = budget


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Statements inside get `seconds` in all, counted from now; None or 0: no budget."""
    token = _deadline.set((time.monotonic() + seconds, seconds) if seconds else None)
    try:
        yield
    finally:
        _deadline.reset(token)


@asynccontextmanager
async def within_budget() -> AsyncIterator[None]:
    """Runs the block under what is left of the current budget; BudgetExhausted when it
    runs out (the awaited statement is cancelled: asyncpg asks the server to stop it)."""
    current = _deadline.get()
    if current is None:
        yield
        return
    deadline, budget = current
    left = deadline - time.monotonic()
    if left <= 0:
        raise BudgetExhausted(budget)
    timeout = asyncio.timeout(left)
    try:
        async with timeout:
            yield
    except TimeoutError:
        if timeout.expired():
            raise BudgetExhausted(budget) from None
        raise
