"""Process-wide tuning of the Python runtime for a long-running server."""

import gc

# Collect the youngest generation every 20,000 net allocations instead of 700. A live
# fan-out allocates a few hundred objects per delivery, and with the default thresholds
# collections ran so often that they were a third of the gateway's CPU: 1,000
# subscribers at 3 events/s went from 465 to 255 us of CPU per delivery and from
# 5.6 s to 0.5 s p99 latency with this (docs/performance.md, bench.subscribers).
YOUNG_THRESHOLD = 20_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def tune_garbage_collector() -> None:
    """Fewer, larger garbage collections; and everything alive at startup (modules,
    the schema) moved out of the collector's sight, since it lives as long as the
    process and scanning it again on every full collection is wasted work."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
