"""The seed command's progress output: a live bar on terminals, milestones in logs."""

import io

from gateway.progress import ProgressBar


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_logs_get_a_line_per_milestone_not_per_update() -> None:
    out = io.StringIO()
    bar = ProgressBar(stream=out)
    for done in range(0, 1_000_001, 10_000):
        bar("contents", done, 1_000_000)
    lines = out.getvalue().splitlines()
    assert 5 <= len(lines) <= 12, lines
    assert "contents" in lines[-1] and "100%" in lines[-1]
    assert "1,000,000/1,000,000" in lines[-1]


def test_terminals_get_a_bar_redrawn_in_place() -> None:
    out = FakeTerminal()
    bar = ProgressBar(stream=out)
    bar("users", 50, 100)
    bar("users", 100, 100)
    text = out.getvalue()
    assert "\r" in text and "50%" in text and "100%" in text
    assert text.endswith("\n"), "a finished stage ends its line"
