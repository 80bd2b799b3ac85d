"""The record of the HTTP request being served, in a context variable: the SQL hook
(db/instrument.py), the GraphQL view and the log formatter add to it or read it
without it being passed around. gateway/observe.py opens and reports it."""

import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from graphql import OperationDefinitionNode


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    operation_type: str = "none"
    operation_name: str | None = None
    valid: bool = False
    statements: int = 0
    sql_seconds: float = 0.0
    timings: list[tuple[str, float]] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    has_data: bool = False
    status: int = 0
    trace_id: str | None = None
    # Set when a statement of this request committed a write (read-your-writes).
    wrote: bool = False


current: ContextVar[RequestRecord | None] = ContextVar("gateway_request", default=None)


def note_operation(operation: OperationDefinitionNode | None, valid: bool) -> None:
    """The operation the current request runs (None: its document has none to run)."""
    record = current.get()
    if record is None:
        return
    if operation is None:
        record.operation_type = "unknown"
        return
    record.operation_type = operation.operation.value
    record.operation_name = operation.name.value if operation.name else None
    record.valid = valid


def note_result(response: Any) -> None:
    """The error codes (one per error) of a GraphQL response body about to be sent."""
    record = current.get()
    if record is None:
        return
    bodies = response if isinstance(response, list) else [response]
    for body in bodies:
        if not isinstance(body, Mapping):
            continue
        if body.get("data") is not None:
            record.has_data = True
        for error in body.get("errors") or ():
            code = (
                (error.get("extensions") or {}).get("code") if isinstance(error, Mapping) else None
            )
            record.codes.append(str(code or "INTERNAL_SERVER_ERROR"))


def note_write() -> None:
    """A statement of the current request committed a write."""
    record = current.get()
    if record is not None:
        record.wrote = True
