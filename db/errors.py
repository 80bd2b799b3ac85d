"""Database failures as domain exceptions, so the layers above never see a driver's."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy.exc


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; retrying later may work."""


class StatementTimeout(Exception):
    """The database cancelled a statement that ran past the statement timeout. Retrying
    the same work will time out again, so this is not DatabaseUnavailable."""


class UniqueViolation(Exception):
    """A write clashed with a unique constraint; `constraint` names which."""

    def __init__(self, constraint: str | None) -> None:
        super().__init__(f"unique constraint {constraint} violated")
        self.constraint = constraint


# Raised by asyncpg and the OS when the server is down, restarting or unreachable.
_UNREACHABLE = (OSError, TimeoutError, ConnectionError)
# query_canceled: what statement_timeout raises (and pg_cancel_backend, rarely).
_CANCELLED_SQLSTATE = "57014"
# 53300: too many connections, the server cannot take this one now.
_UNREACHABLE_SQLSTATES = {
    "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "53300",
}  # fmt: skip


def _sqlstate(error: sqlalchemy.exc.DBAPIError) -> str | None:
    orig = error.orig
    cause = getattr(orig, "__cause__", None)
    state = getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
    return state if isinstance(state, str) else None


# asyncpg's errors for a connection that is gone or cannot be made, by name: raised
# directly by statements sent on the driver connection (Database.fetch), or as the cause
# of SQLAlchemy's DBAPIError otherwise.
_LOST_CONNECTION = {
    "ConnectionDoesNotExistError",
    "CannotConnectNowError",
    "InterfaceError",
    # The server ended the session while the connection was idle (e.g. terminated by
    # an administrator), and the next statement finds the protocol in disarray.
    "InternalClientError",
}


def _driver_sqlstate(error: BaseException) -> str | None:
    state = getattr(error, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_statement_timeout(error: BaseException) -> bool:
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return _sqlstate(error) == _CANCELLED_SQLSTATE
    return _driver_sqlstate(error) == _CANCELLED_SQLSTATE


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, _UNREACHABLE):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if _sqlstate(error) in _UNREACHABLE_SQLSTATES:
            return True
        cause = getattr(error.orig, "__cause__", None)
        return isinstance(cause, _UNREACHABLE) or type(cause).__name__ in _LOST_CONNECTION
    if (
        type(error).__name__ in _LOST_CONNECTION
        or _driver_sqlstate(error) in _UNREACHABLE_SQLSTATES
    ):
        return True
    # A pool checkout that timed out: every connection is stuck waiting on the server.
    return isinstance(error, sqlalchemy.exc.TimeoutError)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    try:
        yield
    except sqlalchemy.exc.IntegrityError as error:
        cause = getattr(error.orig, "__cause__", None)
        if getattr(cause, "sqlstate", None) == "23505":
            raise UniqueViolation(getattr(cause, "constraint_name", None)) from error
        raise
    except Exception as error:
        if is_statement_timeout(error):
            raise StatementTimeout(str(error)) from error
        if is_unavailable(error):
            raise DatabaseUnavailable(str(error)) from error
        raise
