"""The line each request leaves (gateway/observe.py, gateway/logs.py), through the ASGI
app: slow requests list their SQL with timings; others do not; formats. (A production
process's JSON lines: tests/test_operations_process.py.)"""

import json
import logging

from gateway.logs import JsonFormatter, TextFormatter
from gateway.request_context import RequestRecord, current
from tests.gateway_client import gateway

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


async def test_a_request_under_the_threshold_does_not_list_its_sql(db, tmp_path, caplog) -> None:
    async with gateway(db, tmp_path, slow_request_ms=60_000) as client:
        with caplog.at_level(logging.INFO, logger="gateway.request"):
            await client.post("/graphql", json=QUERY)
    (record,) = request_records(caplog)
    assert record.levelno == logging.INFO
    assert "sql" not in record.fields and record.fields["sql_statements"] >= 1  # type: ignore[attr-defined]


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
