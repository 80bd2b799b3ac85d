"""OpenTelemetry traces from a real gateway process to a local OTLP/HTTP receiver the test
starts (decoding the protobuf export with the opentelemetry-proto package): a span per
request continuing the caller's traceparent, one per operation, one per SQL statement."""

import asyncio
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import TEST_SECRET, FreshDatabases
from tests.live_server import GatewayProcess

pytestmark = pytest.mark.slow

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP trace endpoint on 127.0.0.1 that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.paths.append(self.path)
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            receiver.spans.append(
                                {
                                    "name": span.name,
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent": span.parent_span_id.hex(),
                                    "attributes": {
                                        a.key: a.value.string_value or a.value.int_value
                                        for a in span.attributes
                                    },
                                }
                            )
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
async def traced(server_url, template_url, tmp_path_factory):
    receiver = Receiver()
    databases = FreshDatabases(server_url)
    url = await databases.create()
    logs = tmp_path_factory.mktemp("tracing")
    gateway = GatewayProcess(
        url,
        TEST_SECRET,
        logs / "gateway.log",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="100",
        GATEWAY_LOG_FORMAT="json",
    )
    try:
        await asyncio.to_thread(gateway.wait_ready)
        yield receiver, gateway
    finally:
        gateway.stop()
        receiver.stop()
        await databases.drop_all()


async def spans_of(receiver: Receiver, trace_id: str, names: set[str]) -> list[dict]:
    """The trace's spans once those `names` have arrived: spans are exported in batches,
    and a request's own span ends (and may leave) after those inside it."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = [span for span in receiver.spans if span["trace_id"] == trace_id]
        if names <= {span["name"] for span in found}:
            return found
        await asyncio.sleep(0.1)
    pytest.fail(f"spans of {trace_id} did not arrive: {receiver.spans}")


async def test_a_request_its_operation_and_its_sql_are_spans_of_the_callers_trace(
    traced,
) -> None:
    receiver, gateway = traced
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.url}/graphql",
            json={"query": "query Listing { contents(first: 3) { edges { node { title } } } }"},
            headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"},
        )
    assert response.status_code == 200 and "errors" not in response.json()

    spans = await spans_of(receiver, TRACE_ID, {"POST /graphql", "query Listing"})
    assert all(path == "/v1/traces" for path in receiver.paths)
    (request,) = [span for span in spans if span["name"] == "POST /graphql"]
    assert request["parent"] == CALLER_SPAN, "the caller's traceparent is the parent"
    assert request["attributes"]["http.response.status_code"] == 200
    (operation,) = [span for span in spans if span["name"] == "query Listing"]
    assert operation["parent"] == request["span_id"]
    assert operation["attributes"]["graphql.operation.name"] == "Listing"
    statements = [span for span in spans if span["attributes"].get("db.system") == "postgresql"]
    assert statements, "every SQL statement has a span"
    assert all(span["parent"] == operation["span_id"] for span in statements)
    assert any("FROM" in span["attributes"]["db.statement"] for span in statements)

    logged = await asyncio.to_thread(gateway.log_holding, '"operation_name":"Listing"')
    lines = [json.loads(line) for line in logged.splitlines()]
    (logged,) = [line for line in lines if line.get("operation_name") == "Listing"]
    assert logged["trace_id"] == TRACE_ID, "the request's log line names its trace"


async def test_without_a_traceparent_a_request_starts_its_own_trace(traced) -> None:
    receiver, gateway = traced
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{gateway.url}/graphql",
            json={"query": "query Alone { contents(first: 1) { totalCount } }"},
        )
    assert response.status_code == 200
    deadline = time.monotonic() + 15
    while True:
        alone = [span for span in receiver.spans if span["name"] == "query Alone"]
        parents = [
            span
            for span in receiver.spans
            if alone and span["span_id"] == alone[0]["parent"] and span["name"] == "POST /graphql"
        ]
        if parents or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    (operation,) = alone
    assert operation["trace_id"] != TRACE_ID
    (request,) = parents
    assert request["parent"] == "", "a root span"


def test_without_an_endpoint_opentelemetry_is_not_even_imported() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    program = (
        "import sys\n"
        "from gateway.app import create_app\n"
        "from gateway.settings import Settings\n"
        "create_app(Settings(DATABASE_URL='postgresql+asyncpg://x@127.0.0.1:9/x',"
        f" GATEWAY_SECRET_KEY={TEST_SECRET!r}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GATEWAY_"))}
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
