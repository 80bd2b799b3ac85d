"""Samples gathered between flushes (gateway/metric_batches.py) add up, once written, to
exactly what prometheus_client's own inc() and observe() would have written, bucket
boundaries included; before a flush nothing is written."""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway.metric_batches import PendingSamples

BUCKETS = (0.001, 0.005, 0.01, 0.1)
# Below, on and between the bounds, past the last one (+Inf), and zero.
VALUES = (0.0, 0.0005, 0.001, 0.003, 0.005, 0.005, 0.0099, 0.01, 0.05, 0.1, 0.2, 7.0)


def exposition(registry: CollectorRegistry) -> list[str]:
    # `_created` is when each series was made: the one line the two may differ in.
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def series(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    counter = Counter("work", "Work done.", ["kind"], registry=registry)
    histogram = Histogram("took_seconds", "Time.", ["kind"], buckets=BUCKETS, registry=registry)
    return counter, histogram


def test_a_flushed_batch_writes_what_each_sample_written_alone_would() -> None:
    direct, batched = CollectorRegistry(), CollectorRegistry()
    direct_counter, direct_histogram = series(direct)
    batch_counter, batch_histogram = series(batched)
    pending = PendingSamples()
    for number, value in enumerate(VALUES):
        kind = "even" if number % 2 == 0 else "odd"
        direct_counter.labels(kind).inc()
        direct_histogram.labels(kind).observe(value)
        pending.inc(batch_counter.labels(kind))
        pending.observe(batch_histogram.labels(kind), value)
    direct_counter.labels("even").inc(2.5)
    pending.inc(batch_counter.labels("even"), 2.5)

    pending.flush()

    assert exposition(batched) == exposition(direct)
    assert 'took_seconds_bucket{kind="even",le="0.005"} 3.0' in exposition(batched)


def test_nothing_is_written_before_the_flush_and_nothing_twice_after() -> None:
    registry = CollectorRegistry()
    counter, histogram = series(registry)
    pending = PendingSamples()
    pending.inc(counter.labels("a"), 3)
    pending.observe(histogram.labels("a"), 0.002)
    assert counter.labels("a")._value.get() == 0
    assert 'took_seconds_count{kind="a"} 0.0' in exposition(registry)

    pending.flush()
    pending.flush()

    assert counter.labels("a")._value.get() == 3
    assert 'took_seconds_count{kind="a"} 1.0' in exposition(registry)
    assert 'took_seconds_sum{kind="a"} 0.002' in exposition(registry)
