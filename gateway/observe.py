"""What each request did, gathered while it runs and reported once at its end: one log
line (gateway/logs.py), the request metrics, and the SQL statements it sent. Lines and
metrics are both handed on in batches (LINE_DELAY_SECONDS, gateway/metric_batches.py):
a request pays for a list append and a few dict updates.

A request's record lives in a context variable, so the SQL hook (db/instrument.py)
and the GraphQL view add to the record of the request they serve without it being
passed around. WebSocket connections are counted here too.
"""

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.replicas import ReadScope, ReplicaSet, read_scope
from gateway import metrics
from gateway.request_context import RequestRecord, current
from gateway.shutdown import Draining
from gateway.tracing import Tracing, no_span

log = logging.getLogger("gateway.request")

# Unnamed operations, invalid documents and names past the cap share this label.
OTHER = "other"
# Request lines are logged in batches, at most this late or this many at a time: one
# line at a time through `logging`, between requests, ran ~5x slower than in a loop
# (what it touches is no longer in the CPU's caches), and cost 5 % of the contents
# list's throughput; in batches, ~1 % (docs/performance.md).
LINE_DELAY_SECONDS = 0.2
MAX_WAITING_LINES = 256
# Statements a slow request lists in its log line, at most.
MAX_LOGGED_STATEMENTS = 50
MAX_STATEMENT_CHARS = 300


class OperationNames:
    """The operation names metrics may carry: the first `limit` distinct names of valid
    documents. Everything else is `other`, so a client sending random names cannot
    grow the number of series without bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.known: set[str] = set()

    def label(self, name: str | None, valid: bool) -> str:
        if name is None or not valid:
            return OTHER
        if name in self.known:
            return name
        if len(self.known) >= self.limit:
            return OTHER
        self.known.add(name)
        return name


class Observer:
    """One per app: the settings of what is recorded and reported."""

    def __init__(
        self, *, metrics_on: bool, slow_seconds: float | None, operation_names: int
    ) -> None:
        self.metrics_on = metrics_on
        self.slow_seconds = slow_seconds
        self.names = OperationNames(operation_names)
        self.pid = os.getpid()
        # The labelled series a request updates, looked up once: labels() costs more
        # than the increment itself.
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        # Request lines not yet logged: (finished at, record, viewer id, seconds, outcome).
        self._waiting: list[tuple[float, RequestRecord, int | None, float, str]] = []
        self._timer: asyncio.TimerHandle | None = None

    def statement(self, sql: str, started: float, seconds: float, ok: bool) -> None:
        """The SQL hook (db/instrument.py)."""
        if self.metrics_on:
            metrics.PENDING.inc(metrics.STATEMENTS)
            metrics.PENDING.observe(metrics.STATEMENT_SECONDS, seconds)
        record = current.get()
        if record is not None:
            record.statements += 1
            record.sql_seconds += seconds
            if len(record.timings) < MAX_LOGGED_STATEMENTS:
                record.timings.append((sql, seconds))

    def finish(self, record: RequestRecord, viewer_id: int | None) -> None:
        seconds = time.perf_counter() - record.started
        outcome = _outcome(record)
        if self.metrics_on:
            pending = metrics.PENDING
            for code in record.codes:
                pending.inc(metrics.ERRORS.labels(code))
                if code == "RATE_LIMITED":
                    pending.inc(metrics.RATE_LIMITED)
            kind = record.operation_type
            if kind == "none" and record.codes:
                kind = "unknown"  # refused before its document was read
            if kind != "none":
                name = self.names.label(record.operation_name, record.valid)
                key = (kind, name, outcome)
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = (
                        metrics.REQUESTS.labels(kind, name, outcome),
                        metrics.REQUEST_SECONDS.labels(kind, name),
                    )
                pending.inc(series[0])
                pending.observe(series[1], seconds)
        slow = self.slow_seconds is not None and seconds >= self.slow_seconds
        if not log.isEnabledFor(logging.WARNING if slow else logging.INFO):
            return
        finished = time.time()
        if slow:
            # At once: a slow request is worth a look, and lines at WARNING are never held.
            fields = self._fields(record, viewer_id, seconds, outcome)
            fields["slow"] = True
            fields["sql"] = [
                {
                    "ms": round(took * 1000, 2),
                    "statement": " ".join(sql.split())[:MAX_STATEMENT_CHARS],
                }
                for sql, took in record.timings
            ]
            _emit(logging.WARNING, "slow request", fields, finished)
            return
        self._waiting.append((finished, record, viewer_id, seconds, outcome))
        if len(self._waiting) >= MAX_WAITING_LINES:
            self.write_lines()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.write_lines()  # no loop to come back to them later
            else:
                self._timer = loop.call_later(LINE_DELAY_SECONDS, self.write_lines)

    def write_lines(self) -> None:
        """Logs the request lines waiting, each with the time its request finished."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []
        for finished, record, viewer_id, seconds, outcome in waiting:
            fields = self._fields(record, viewer_id, seconds, outcome)
            _emit(logging.INFO, "request", fields, finished)

    def _fields(
        self, record: RequestRecord, viewer_id: int | None, seconds: float, outcome: str
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "request_id": record.request_id,
            "pid": self.pid,
            "method": record.method,
            "path": record.path,
            "status": record.status,
            "operation_type": record.operation_type,
            "operation_name": record.operation_name,
            "viewer_id": viewer_id,
            "duration_ms": round(seconds * 1000, 2),
            "sql_statements": record.statements,
            "sql_ms": round(record.sql_seconds * 1000, 2),
            "outcome": outcome,
            "error_codes": sorted(set(record.codes)),
        }
        if record.trace_id is not None:
            fields["trace_id"] = record.trace_id
        return fields


def _emit(level: int, message: str, fields: dict[str, Any], created: float) -> None:
    """log.log(level, message, extra=...) without looking up the caller's source line,
    which no format shows and which was a fifth of the cost of a request's line; dated
    `created` (time.time()), when its request finished."""
    record = log.makeRecord(log.name, level, "", 0, message, (), None)
    record.created = created
    record.msecs = created % 1 * 1000
    record.fields = fields
    log.handle(record)


def _outcome(record: RequestRecord) -> str:
    if record.codes:
        return "partial" if record.has_data else "error"
    return "ok" if record.status < 400 else "error"


class ObserveRequests:
    """Opens a record for every HTTP request to `path` and reports it at the end; counts
    WebSocket connections to it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        observer: Observer,
        draining: Draining | None = None,
        replicas: ReplicaSet | None = None,
        tracing: Tracing | None = None,
        path: str = "/graphql",
    ) -> None:
        self.app = app
        self.observer = observer
        self.draining = draining
        self.replicas = replicas
        self.tracing = tracing
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == self.path:
            with websocket_open(self.observer.metrics_on):
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        record = RequestRecord(
            request_id=str(state.get("request_id", "")), method=scope["method"], path=scope["path"]
        )
        token = current.set(record)
        reads: ReadScope | None = None
        reads_token = None
        if self.replicas is not None:
            reads = ReadScope(viewer=lambda: getattr(state.get("viewer"), "id", None))
            reads_token = read_scope.set(reads)

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                if reads is not None and reads.wrote:
                    await self._remember_write(reads)
                record.status = message["status"]
                if self.draining is not None and self.draining.started:
                    # The client's next request opens a new connection, which the load
                    # balancer gives to another replica.
                    message["headers"] = [*message.get("headers", ()), (b"connection", b"close")]
            await send(message)

        try:
            with self.tracing.request(scope, record) if self.tracing else no_span():
                await self.app(scope, receive, send_status)
        except BaseException:
            record.status = record.status or 500
            raise
        finally:
            current.reset(token)
            if reads_token is not None:
                read_scope.reset(reads_token)
            viewer = state.get("viewer")
            self.observer.finish(record, getattr(viewer, "id", None))

    async def _remember_write(self, reads: ReadScope) -> None:
        """Before a request that wrote answers: its viewer's next reads must see it."""
        viewer_id = reads.viewer()
        if viewer_id is None or self.replicas is None:
            return
        try:
            await self.replicas.note_write(viewer_id)
        except Exception:
            log.exception("could not note viewer %s's write for read-your-writes", viewer_id)


@contextmanager
def websocket_open(counted: bool) -> Iterator[None]:
    if counted:
        metrics.WEBSOCKETS.inc()
    try:
        yield
    finally:
        if counted:
            metrics.WEBSOCKETS.dec()


@contextmanager
def subscription_running(field_name: str, counted: bool = True) -> Iterator[None]:
    gauge = metrics.SUBSCRIPTIONS.labels(field_name) if counted else None
    if gauge is not None:
        gauge.inc()
    try:
        yield
    finally:
        if gauge is not None:
            gauge.dec()


def event_delivered() -> None:
    metrics.EVENTS_DELIVERED.inc()
