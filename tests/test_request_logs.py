"""The line each request leaves (gateway/observe.py, gateway/logs.py), through the ASGI
app: slow requests list their SQL with timings; others do not; formats. (A production
process's JSON lines: tests/test_operations_process.py.)"""

import asyncio
import json
import logging
import time

from gateway.logs import JsonFormatter, TextFormatter
from gateway.observe import LINE_DELAY_SECONDS
from gateway.request_context import RequestRecord, current
from tests.gateway_client import gateway, graphql_app

QUERY = {"query": "query Listing { contents(first: 2) { edges { node { title } } } }"}


def request_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.request"]


async def test_a_slow_request_logs_its_sql_statements_with_their_times(
    db, tmp_path, caplog
) -> None:
    # 0.001 ms: every request is slow.
    async with gateway(db, tmp_path, slow_request_ms=0.001) as client:
        with caplog.at_level(logging.INFO, logger="gateway.request"):
            response = await client.post("/graphql", json=QUERY)
    assert response.status_code == 200
    (record,) = request_records(caplog)
    assert record.levelno == logging.WARNING
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["slow"] is True and fields["operation_name"] == "Listing"
    assert len(fields["sql"]) == fields["sql_statements"] >= 1
    assert all(s["ms"] >= 0 and s["statement"] for s in fields["sql"])
    assert any(s["statement"].startswith(("SELECT", "WITH")) for s in fields["sql"])
    assert all(len(s["statement"]) <= 300 for s in fields["sql"]), "long ones are cut"
    assert fields["request_id"] == response.headers["x-request-id"]


async def logged(caplog, count: int) -> list[logging.LogRecord]:
    """The request lines once `count` are there: lines below WARNING are logged in
    batches, up to LINE_DELAY_SECONDS after their request (or after 5 s, for the test to
    say what is missing)."""
    for _ in range(250):
        if len(request_records(caplog)) >= count:
            break
        await asyncio.sleep(0.02)
    return request_records(caplog)


async def test_a_request_under_the_threshold_does_not_list_its_sql(db, tmp_path, caplog) -> None:
    async with gateway(db, tmp_path, slow_request_ms=60_000) as client:
        with caplog.at_level(logging.INFO, logger="gateway.request"):
            await client.post("/graphql", json=QUERY)
            (record,) = await logged(caplog, 1)
    assert record.levelno == logging.INFO
    assert "sql" not in record.fields and record.fields["sql_statements"] >= 1  # type: ignore[attr-defined]


async def test_request_lines_come_in_a_batch_soon_after_dated_when_each_finished(
    db, tmp_path, caplog
) -> None:
    async with gateway(db, tmp_path, slow_request_ms=60_000) as client:
        with caplog.at_level(logging.INFO, logger="gateway.request"):
            finished = []
            for _ in range(3):
                sent = time.time()
                response = await client.post("/graphql", json=QUERY)
                finished.append((sent, time.time(), response.headers["x-request-id"]))
                await asyncio.sleep(0.05)
            waited_from = time.monotonic()
            records = await logged(caplog, 3)
            waited = time.monotonic() - waited_from
    assert [r.fields["request_id"] for r in records] == [i for _, _, i in finished]  # type: ignore[attr-defined]
    # The delay, and room for a loaded machine; never the 5 s `logged` gives up after.
    assert waited < LINE_DELAY_SECONDS + 1.5, "written within the delay, with nothing else"
    for record, (sent, answered, _) in zip(records, finished, strict=True):
        # Not when the batch was written: that is LINE_DELAY_SECONDS after the first.
        assert sent <= record.created <= answered, "dated when its request finished"
    assert len(request_records(caplog)) == 3, "each line once"


async def test_lines_still_waiting_are_written_when_the_app_stops(
    db, tmp_path, caplog, monkeypatch
) -> None:
    # However slow the machine, the batch's own timer does not write it first.
    monkeypatch.setattr("gateway.observe.LINE_DELAY_SECONDS", 60)
    async with gateway(db, tmp_path, slow_request_ms=60_000) as client:
        with caplog.at_level(logging.INFO, logger="gateway.request"):
            await client.post("/graphql", json=QUERY)
            assert request_records(caplog) == [], "the line waits for its batch"
            graphql_app(client).state.observer.write_lines()  # what the app's shutdown does
            assert len(request_records(caplog)) == 1


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("gateway.errors", logging.ERROR, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_lines_logged_during_a_request_carry_its_id_and_trace() -> None:
    token = current.set(
        RequestRecord(request_id="req-1", method="POST", path="/graphql", trace_id="ab" * 16)
    )
    try:
        line = json.loads(JsonFormatter().format(_record("unexpected error")))
    finally:
        current.reset(token)
    assert line["request_id"] == "req-1" and line["trace_id"] == "ab" * 16
    assert line["level"] == "ERROR" and line["message"] == "unexpected error"
    assert line["time"].endswith("Z")


def test_the_text_format_puts_a_request_on_one_line() -> None:
    fields = {
        "request_id": "req-2", "pid": 1, "method": "POST", "path": "/graphql", "status": 429,
        "operation_type": "query", "operation_name": "Listing", "viewer_id": 7,
        "duration_ms": 1.5, "sql_statements": 0, "sql_ms": 0.0, "outcome": "error",
        "error_codes": ["RATE_LIMITED"],
    }  # fmt: skip
    record = logging.LogRecord("gateway.request", logging.INFO, __file__, 1, "request", (), None)
    record.fields = fields
    line = TextFormatter().format(record)
    assert "\n" not in line
    assert "POST /graphql 429 query Listing viewer=7 1.5ms sql=0/0.0ms error RATE_LIMITED" in line
