"""A time budget shared by every statement of one request.

The gateway opens a budget when a request starts (gateway/graphql_view.py); each session
and statement of that request then runs under what is left of it, and the database
cancels whatever is still running when it runs out. So a request holds a connection for
at most its budget, however many statements it makes, where the statement timeout alone
would allow each of them that long. Outside a budget (migrations, seeding, background
work) nothing changes.

A budget that runs out while the request waits for a pooled connection is the gateway's
overload, not the request's size: that is DatabaseUnavailable (try again later), not
BudgetExhausted (ask for less)."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from db.errors import DatabaseUnavailable, StatementTimeout


class BudgetExhausted(StatementTimeout):
    """The request used up its time budget; its statements were cancelled (or not run)."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"the request used up its database time budget of {budget:g} s")
        self.budget = budget


class NoConnectionInTime(DatabaseUnavailable):
    """The budget ran out while the request waited for a connection from the pool."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"no database connection was free within the budget of {budget:g} s")


@dataclass(slots=True)
class _Budget:
    deadline: float
    seconds: float
    ran_out_waiting: bool = False

    def exhausted(self) -> StatementTimeout | DatabaseUnavailable:
        if self.ran_out_waiting:
            return NoConnectionInTime(self.seconds)
        return BudgetExhausted(self.seconds)


_budget: ContextVar[_Budget | None] = ContextVar("db_budget", default=None)
# Whether the innermost budgeted block of this task is waiting for a connection.
_waiting: ContextVar[list[bool] | None] = ContextVar("db_waiting", default=None)


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Statements inside get `seconds` in all, counted from now; None or 0: no budget."""
    token = _budget.set(_Budget(time.monotonic() + seconds, seconds) if seconds else None)
    try:
        yield
    finally:
        _budget.reset(token)


@asynccontextmanager
async def within_budget() -> AsyncIterator[None]:
    """Runs the block under what is left of the current budget, and raises what it ran
    out on when it does (the awaited statement is cancelled: asyncpg asks the server to
    stop it)."""
    budget = _budget.get()
    if budget is None:
        yield
        return
    left = budget.deadline - time.monotonic()
    if left <= 0:
        raise budget.exhausted()
    timeout = asyncio.timeout(left)
    waiting = [False]
    token = _waiting.set(waiting)
    try:
        async with timeout:
            yield
    except TimeoutError:
        if not timeout.expired():
            raise
        budget.ran_out_waiting = budget.ran_out_waiting or waiting[0]
        raise budget.exhausted() from None
    finally:
        _waiting.reset(token)


@contextmanager
def waiting_for_connection() -> Iterator[None]:
    """Marks a wait for a pooled connection: a budget that runs out in it says so."""
    waiting = _waiting.get()
    if waiting is None:
        yield
        return
    waiting[0] = True
    yield
    waiting[0] = False  # not reached when the wait was cancelled
