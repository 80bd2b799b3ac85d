"""Log lines: one JSON object a line in production (GATEWAY_LOG_FORMAT=json), short text
lines in development. Every process logs through the configuration `logging_config`
returns, uvicorn's loggers included (uvicorn applies it in each worker).

uvicorn's own access log is off: gateway/observe.py writes one line per request that
says more (operation, viewer id, SQL statements and time, error codes). No line ever
holds a token, a password or a query's variables.
"""

import contextlib
import logging
import os
import select
import stat
import threading
import time
import traceback
from typing import IO, Any

import orjson

from gateway.request_context import current

REQUEST_LOGGER = "gateway.request"
# No format shows a record's process or thread, and asking costs a system call or two
# on every record: a line per request makes that a hot path.
logging.logProcesses = False
logging.logThreads = False
logging.logMultiprocessing = False
# Quiet by default: pgserver narrates every command it runs at INFO.
QUIET_LOGGERS = ("pgserver", "alembic.runtime.plugins")


# A one-entry memo of a pure function (the formatted second), no service state.
_second: tuple[int, str] = (0, "")


def _timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds; the part up to the second is formatted once a
    second (a line per request makes this a hot path)."""
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            # Lines logged while a request runs (a masked error, say) name it.
            active = current.get()
            if active is not None:
                line["request_id"] = active.request_id
                if active.trace_id is not None:
                    line["trace_id"] = active.trace_id
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message`, and for a request its essentials on the same line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request = getattr(record, "fields", None)
        if record.name != REQUEST_LOGGER or not isinstance(request, dict):
            return super().format(record)
        parts = [
            f"{request['method']} {request['path']} {request['status']}",
            f"{request['operation_type']} {request['operation_name'] or '-'}",
            f"viewer={request['viewer_id'] if request['viewer_id'] is not None else '-'}",
            f"{request['duration_ms']}ms",
            f"sql={request['sql_statements']}/{request['sql_ms']}ms",
            request["outcome"],
        ]
        if request["error_codes"]:
            parts.append(",".join(request["error_codes"]))
        parts.append(f"id={request['request_id']}")
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {' '.join(parts)}"
        for statement in request.get("sql", ()):
            line += f"\n    {statement['ms']}ms {statement['statement']}"
        return line


# How long a line below WARNING may wait in the buffer before it is written, and how
# much may gather before it is written regardless.
FLUSH_SECONDS = 0.2
BUFFER_BYTES = 64 * 1024
# The most Linux writes to a pipe in one piece: workers share their stderr, often a pipe
# (a container's log), and a longer write may be split where the pipe is full, another
# worker's lines landing inside one of ours. A regular file takes any write whole (its
# writes are serialised), so a file gets each flush in one write.
WHOLE_WRITE_BYTES = getattr(select, "PIPE_BUF", 4096)


def _descriptor(stream: IO[str]) -> int | None:
    """The stream's file descriptor, written to directly: sys.stderr has no buffer at
    all under PYTHONUNBUFFERED=1 (container images often set it), and writes out every
    line otherwise."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _whole_write_bytes(descriptor: int) -> int | None:
    """How much one write may hold for the reader to get it whole; None: any amount."""
    try:
        regular = stat.S_ISREG(os.fstat(descriptor).st_mode)
    except OSError:
        regular = False
    return None if regular else WHOLE_WRITE_BYTES


def _write_all(descriptor: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


class BufferedLines(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes a line per request without a system call per line.

    sys.stderr writes every line through at once; with a line per request that `write`
    was a quarter of what logging a request cost. Here records wait in a buffer, which a
    thread of this handler writes out every `FLUSH_SECONDS` (and emitting does once it
    holds `BUFFER_BYTES`); to a pipe (or socket, or terminal) in writes of whole records
    of at most `WHOLE_WRITE_BYTES` each, so processes sharing it never cut each other's
    lines, to a regular file in one write. A WARNING or worse is
    written at once, with every line before it, so the order holds and an error is
    never held back; exiting flushes (logging.shutdown). A process killed outright loses
    at most its last `FLUSH_SECONDS` of lines below WARNING. A stream that is no file is
    written through line by line, as StreamHandler does."""

    def __init__(self, stream: IO[str] | None = None, flush_seconds: float = FLUSH_SECONDS):
        super().__init__(stream)
        self._descriptor = _descriptor(self.stream)
        self._limit = None if self._descriptor is None else _whole_write_bytes(self._descriptor)
        self._records: list[bytes] = []
        self._size = 0
        self._flush_seconds = flush_seconds
        # Not `_closed`: logging.Handler keeps a flag of that name.
        self._stopping = threading.Event()
        self._flusher: threading.Thread | None = None
        if self._descriptor is not None:
            self._flusher = threading.Thread(
                target=self._keep_flushing, name="log-flush", daemon=True
            )
            self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        if self._descriptor is None:
            super().emit(record)
            return
        try:
            data = (self.format(record) + self.terminator).encode("utf-8", "backslashreplace")
            self._records.append(data)
            self._size += len(data)
            if record.levelno >= logging.WARNING or self._size >= BUFFER_BYTES:
                self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            records, self._records, self._size = self._records, [], 0
            if self._descriptor is not None and records:
                self._write_out(self._descriptor, records, self._limit)
            super().flush()

    @staticmethod
    def _write_out(descriptor: int, records: list[bytes], limit: int | None) -> None:
        """All of them in one write, or with a `limit`, whole records, as many as fit in
        a write of at most `limit` bytes (one longer record alone)."""
        if limit is None:
            _write_all(descriptor, b"".join(records))
            return
        chunk = bytearray()
        for data in records:
            if chunk and len(chunk) + len(data) > limit:
                _write_all(descriptor, chunk)
                chunk.clear()
            chunk += data
        _write_all(descriptor, chunk)

    def close(self) -> None:
        self._stopping.set()
        # A stream closed first leaves nothing to write to.
        with contextlib.suppress(OSError, ValueError):
            self.flush()
        super().close()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            # Bounded: logging.shutdown closes handlers holding their lock, which a
            # flush the thread has just begun waits for.
            self._flusher.join(timeout=1.0)

    def flushing(self) -> bool:
        """Whether the thread that writes waiting lines still runs."""
        return self._flusher is not None and self._flusher.is_alive()

    def _keep_flushing(self) -> None:
        while not self._stopping.wait(self._flush_seconds):
            if self._records:
                try:
                    self.flush()
                except (OSError, ValueError):
                    return  # the stream was closed: nothing left to write to


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A logging.config.dictConfig for every gateway process (uvicorn's log_config)."""
    formatter = (
        "gateway.logs.JsonFormatter" if log_format == "json" else "gateway.logs.TextFormatter"
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gateway": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "gateway.logs.BufferedLines",
                "formatter": "gateway",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }
