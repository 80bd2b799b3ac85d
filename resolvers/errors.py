"""Errors a client can act on, each with its contract code in extensions.code."""

from typing import Any

from graphql import GraphQLError


class GatewayError(GraphQLError):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": self.code, **extensions})


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class ServiceUnavailable(GatewayError):
    code = "SERVICE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("The database cannot be reached right now; retry in a few seconds.")


class Conflict(GatewayError):
    code = "CONFLICT"


class CursorExpired(GatewayError):
    code = "CURSOR_EXPIRED"

    def __init__(self) -> None:
        super().__init__(
            "`after` is older than the events this server keeps: fetch what you show again, "
            "then subscribe without `after`."
        )


def require_viewer_id(viewer_id: int | None, action: str) -> int:
    if viewer_id is None:
        raise Unauthenticated(f"Sign in to {action}: send `Authorization: Bearer <token>`.")
    return viewer_id
