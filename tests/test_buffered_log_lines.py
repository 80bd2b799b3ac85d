"""The handler every gateway process logs through (gateway/logs.py BufferedLines): a
line below WARNING may wait in the buffer, at most `flush_seconds`; a WARNING or worse
is written at once, after every line before it; closing writes what waits."""

import io
import logging
import time
from pathlib import Path

from gateway.logs import BufferedLines


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("gateway.test", level, __file__, 1, message, (), None)


def handler_on(stream: io.TextIOBase, flush_seconds: float) -> BufferedLines:
    handler = BufferedLines(stream, flush_seconds=flush_seconds)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler


def test_a_warning_is_written_at_once_after_the_lines_waiting_before_it(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    with path.open("w") as stream:
        handler = handler_on(stream, flush_seconds=60)
        try:
            handler.handle(record(logging.INFO, "one"))
            handler.handle(record(logging.INFO, "two"))
            assert path.read_text() == "", "lines below WARNING wait"
            handler.handle(record(logging.WARNING, "three"))
            assert path.read_text() == "INFO one\nINFO two\nWARNING three\n"
        finally:
            handler.close()


def test_a_waiting_line_is_written_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    with path.open("w") as stream:
        handler = handler_on(stream, flush_seconds=0.05)
        try:
            handler.handle(record(logging.INFO, "alone"))
            deadline = time.monotonic() + 5
            while path.read_text() == "" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert path.read_text() == "INFO alone\n"
        finally:
            handler.close()


def test_closing_writes_the_lines_still_waiting(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    with path.open("w") as stream:
        handler = handler_on(stream, flush_seconds=60)
        handler.handle(record(logging.INFO, "last words"))
        handler.close()
        assert path.read_text() == "INFO last words\n"
        assert not handler.flushing(), "closing stops the handler's thread"


def test_a_stream_without_a_byte_buffer_gets_every_line_at_once() -> None:
    stream = io.StringIO()
    handler = handler_on(stream, flush_seconds=60)
    try:
        handler.handle(record(logging.INFO, "straight through"))
        assert stream.getvalue() == "INFO straight through\n"
    finally:
        handler.close()
