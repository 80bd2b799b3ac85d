"""A progress bar for long CLI tasks, usable wherever a `(stage, done, total)` callback is.

On a terminal it redraws one line per stage in place; anywhere else (CI logs, files)
it writes a plain line at every tenth of a stage, since carriage returns turn
logs into one unreadable line.
"""

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.1  # a terminal redrawn more often than this only burns CPU


class ProgressBar:
    """Renders `stage [#####.....] 41% 410,000/1,000,000 12.3s` on stderr."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = self.stream.isatty()
        self._stage: str | None = None
        self._started = 0.0
        self._drawn_at = 0.0
        self._next_tenth = 10
        self._line_length = 0
        self._finished = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self._stage:
            self.close()
            self._stage, self._started, self._next_tenth, self._finished = stage, now, 10, False
            self._drawn_at = 0.0  # a new stage shows at once
        if self._finished:
            return
        complete = done >= total
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if self.interactive:
            if complete or now - self._drawn_at >= REDRAW_SECONDS:
                self._draw(self._line(stage, done, total, percent, now), now)
        elif complete or percent >= self._next_tenth:
            self._next_tenth = percent // 10 * 10 + 10
            self.stream.write(self._line(stage, done, total, percent, now) + "\n")
            self.stream.flush()
        if complete:
            self.close()
            self._finished = True

    def close(self) -> None:
        """End a half-drawn terminal line, e.g. when a task fails mid-stage."""
        if self.interactive and self._line_length:
            self.stream.write("\n")
            self.stream.flush()
        self._line_length = 0

    def _line(self, stage: str, done: int, total: int, percent: int, now: float) -> str:
        filled = self.width * percent // 100
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = now - self._started
        return f"{stage} [{bar}] {percent:3d}% {done:,}/{total:,} {elapsed:.1f}s"

    def _draw(self, line: str, now: float) -> None:
        # Pad over the previous, possibly longer, line rather than clearing it.
        padding = " " * max(0, self._line_length - len(line))
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self._line_length = len(line)
        self._drawn_at = now
