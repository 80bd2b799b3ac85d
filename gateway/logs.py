"""Log lines: one JSON object a line in production (GATEWAY_LOG_FORMAT=json), short text
lines in development. Every process logs through the configuration `logging_config`
returns, uvicorn's loggers included (uvicorn applies it in each worker).

uvicorn's own access log is off: gateway/observe.py writes one line per request that
says more (operation, viewer id, SQL statements and time, error codes). No line ever
holds a token, a password or a query's variables.
"""

import logging
import time
import traceback
from typing import Any

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
                "class": "logging.StreamHandler",
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
