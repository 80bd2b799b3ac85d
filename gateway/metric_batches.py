"""Samples a request adds to the metrics, gathered in plain dicts and written to the
series in one go, at most `FLUSH_SECONDS` later.

Why: with several workers every increment is a locked write into a memory-mapped file
(~0.6 us; a histogram observation is two), and a request makes six of them, plus the
same for each of its statements. Gathered here, a sample costs a dict update; written
once a second, the writes no longer grow with the request rate. What it costs: another
worker's /metrics may show this worker's last second of samples one flush late, which
Prometheus, scraping every 15-60 s, does not notice. This process's own /metrics
flushes first, and so does a worker leaving, so nothing is lost.

Everything runs on the event loop's thread (requests, the SQL hook, the flush), so
nothing here needs a lock.
"""

from bisect import bisect_left
from typing import Any

# How often the app writes gathered samples to the series (gateway/app.py).
FLUSH_SECONDS = 1.0


class _Observations:
    """A histogram's observations since the last flush: their sum, and how many fell
    into each bucket."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.total = 0.0


class PendingSamples:
    """Counter increments and histogram observations not yet written to their series.
    `counter` and `histogram` are prometheus_client children (a series with its labels
    given, or an unlabelled one)."""

    __slots__ = ("_counts", "_observed")

    def __init__(self) -> None:
        self._counts: dict[Any, float] = {}
        self._observed: dict[Any, _Observations] = {}

    def inc(self, counter: Any, amount: float = 1.0) -> None:
        self._counts[counter] = self._counts.get(counter, 0.0) + amount

    def observe(self, histogram: Any, value: float) -> None:
        pending = self._observed.get(histogram)
        if pending is None:
            # Ends with +Inf, so every value has a bucket.
            pending = self._observed[histogram] = _Observations(histogram._upper_bounds)
        pending.total += value
        # Histogram.observe counts a value in the first bucket whose bound is >= it.
        pending.counts[bisect_left(pending.bounds, value)] += 1

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        for counter, amount in counts.items():
            counter.inc(amount)
        for histogram, pending in observed.items():
            # What Histogram.observe writes (its sum and one bucket), once per bucket
            # for the whole batch. Those are private attributes of prometheus_client
            # (pinned in requirements.lock); tests/test_metric_batches.py compares the
            # result with observe() itself, so a change there fails a test.
            histogram._sum.inc(pending.total)
            for bucket, count in zip(histogram._buckets, pending.counts, strict=True):
                if count:
                    bucket.inc(count)
