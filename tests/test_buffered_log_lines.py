"""The handler every gateway process logs through (gateway/logs.py BufferedLines): a
line below WARNING may wait in the buffer, at most `flush_seconds`; a WARNING or worse
is written at once, after every line before it; closing writes what waits."""

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.logs import BufferedLines
from tests.live_server import ROOT


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("gateway.test", level, __file__, 1, message, (), None)


def handler_on(stream: io.TextIOBase, flush_seconds: float) -> BufferedLines:
    handler = BufferedLines(stream, flush_seconds=flush_seconds)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    return handler


@contextmanager
def handler_on_file(tmp_path: Path, flush_seconds: float) -> Iterator[tuple[BufferedLines, Path]]:
    path = tmp_path / "gateway.log"
    with path.open("w") as stream:
        handler = handler_on(stream, flush_seconds)
        try:
            yield handler, path
        finally:
            handler.close()


def test_a_warning_is_written_at_once_after_the_lines_waiting_before_it(tmp_path: Path) -> None:
    with handler_on_file(tmp_path, flush_seconds=60) as (handler, path):
        handler.handle(record(logging.INFO, "one"))
        handler.handle(record(logging.INFO, "two"))
        assert path.read_text() == "", "lines below WARNING wait"
        handler.handle(record(logging.WARNING, "three"))
        assert path.read_text() == "INFO one\nINFO two\nWARNING three\n"


def test_a_waiting_line_is_written_within_the_flush_interval(tmp_path: Path) -> None:
    with handler_on_file(tmp_path, flush_seconds=0.05) as (handler, path):
        handler.handle(record(logging.INFO, "alone"))
        deadline = time.monotonic() + 5
        while path.read_text() == "" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.read_text() == "INFO alone\n"


def test_closing_writes_the_lines_still_waiting(tmp_path: Path) -> None:
    with handler_on_file(tmp_path, flush_seconds=60) as (handler, path):
        handler.handle(record(logging.INFO, "last words"))
        handler.close()
        assert path.read_text() == "INFO last words\n"
        assert not handler.flushing(), "closing stops the handler's thread"


def test_closing_as_logging_shutdown_does_cannot_hang_on_a_flush_under_way(
    tmp_path: Path,
) -> None:
    with handler_on_file(tmp_path, flush_seconds=0.01) as (handler, path):
        started = time.monotonic()
        # logging.shutdown: acquire, flush, close, release. Meanwhile the handler's
        # thread wakes, finds a line waiting and waits for the lock to write it.
        handler.acquire()
        try:
            handler.handle(record(logging.INFO, "at exit"))
            time.sleep(0.1)
            handler.flush()
            handler.close()
        finally:
            handler.release()
        assert time.monotonic() - started < 5, "closing did not wait for its own lock"
        assert path.read_text() == "INFO at exit\n"


def test_a_stream_without_a_byte_buffer_gets_every_line_at_once() -> None:
    stream = io.StringIO()
    handler = handler_on(stream, flush_seconds=60)
    try:
        handler.handle(record(logging.INFO, "straight through"))
        assert stream.getvalue() == "INFO straight through\n"
    finally:
        handler.close()


WRITER = """
import logging, sys
from gateway.logs import BufferedLines

handler = BufferedLines(sys.stderr, flush_seconds=0.01)
handler.setFormatter(logging.Formatter("%(message)s"))
name = sys.argv[1]
for n in range(2000):
    handler.handle(logging.LogRecord("w", logging.INFO, "", 1, f"{name} {n:05d} " + name * 600, (), None))
handler.close()
"""


def _shared_by_two_writers(stderr: int) -> list[subprocess.Popen[bytes]]:
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, name], stderr=stderr, cwd=ROOT)
        for name in ("a", "b")
    ]
    os.close(stderr)
    return writers


def _whole_and_in_order(received: bytes) -> None:
    lines = received.decode().splitlines()
    assert len(lines) == 4000
    broken = [line for line in lines if line != f"{line[0]} {line[2:7]} " + line[0] * 600]
    assert not broken, f"{len(broken)} lines cut by another process's: {broken[0][:80]!r}"
    for name in ("a", "b"):
        numbers = [int(line[2:7]) for line in lines if line[0] == name]
        assert numbers == list(range(2000)), "each process's lines whole and in order"


def test_lines_of_processes_sharing_a_pipe_never_interleave() -> None:
    """`gateway serve --workers N` gives every worker the same stderr, often a pipe
    (a container's log). Linux writes up to PIPE_BUF (4 KiB) bytes to a pipe whole;
    a longer write may be cut where the pipe is full and another process's lines land
    in the middle of a line. The reader here is slow, so the pipe is full often."""
    read_end, write_end = os.pipe()
    writers = _shared_by_two_writers(write_end)
    received = bytearray()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(1024):
            received += chunk
            time.sleep(0.0005)
    assert [w.wait(30) for w in writers] == [0, 0]
    _whole_and_in_order(bytes(received))


def test_lines_of_processes_sharing_a_file_never_interleave(tmp_path: Path) -> None:
    """The same two processes on one file (`gateway serve 2>> gateway.log`), which
    gets each flush in a single write."""
    path = tmp_path / "shared.log"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    writers = _shared_by_two_writers(descriptor)
    assert [w.wait(30) for w in writers] == [0, 0]
    _whole_and_in_order(path.read_bytes())
