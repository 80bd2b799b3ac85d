"""OpenTelemetry traces, when the standard OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per
HTTP request (child of the caller's W3C `traceparent`, when it sends one), one per
GraphQL operation under it, and one per SQL statement under that (from the SQL hook,
db/instrument.py). Spans are exported over OTLP/HTTP in batches by a background thread.

Unset, nothing here is imported beyond this module: the OpenTelemetry packages load
only in `Tracing.__init__`, and no span, hook or propagator exists.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.request_context import RequestRecord, current

# Statement text kept on a span: enough to recognise it.
MAX_STATEMENT_CHARS = 2_000


class Tracing:
    def __init__(self, service_name: str) -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        # The exporter reads the OTEL_EXPORTER_OTLP_* variables itself (endpoint,
        # headers, timeout, compression), as every OpenTelemetry SDK does.
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("content-gateway")
        self.propagator = TraceContextTextMapPropagator()
        self.trace = trace

    @contextmanager
    def request(self, scope: Any, record: RequestRecord) -> Iterator[None]:
        """The span of one HTTP request, continuing the caller's trace."""
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name in (b"traceparent", b"tracestate")
        }
        parent = self.propagator.extract(headers) if headers else None
        with self.tracer.start_as_current_span(
            f"{record.method} {record.path}",
            context=parent,
            kind=self.trace.SpanKind.SERVER,
            attributes={"http.request.method": record.method, "url.path": record.path},
        ) as span:
            record.trace_id = format(span.get_span_context().trace_id, "032x")
            try:
                yield
            finally:
                span.set_attribute("http.response.status_code", record.status)
                span.set_attribute("gateway.request_id", record.request_id)

    @contextmanager
    def operation(self) -> Iterator[None]:
        """The span of the GraphQL operation the current request runs."""
        with self.tracer.start_as_current_span("graphql.operation") as span:
            try:
                yield
            finally:
                record = current.get()
                if record is not None and record.operation_type not in ("none", "unknown"):
                    span.update_name(
                        f"{record.operation_type} {record.operation_name or ''}".strip()
                    )
                    span.set_attribute("graphql.operation.type", record.operation_type)
                    if record.operation_name:
                        span.set_attribute("graphql.operation.name", record.operation_name)

    def statement(self, sql: str, started: float, seconds: float, ok: bool) -> None:
        """The SQL hook: a span for a statement that has just finished, under the span
        current where it ran."""
        if current.get() is None:
            return  # background work (pings, checks, rate-limit rounds): not traced
        end = time.time_ns()
        words = sql.split(None, 1)
        span = self.tracer.start_span(
            words[0].upper() if words else "SQL",
            kind=self.trace.SpanKind.CLIENT,
            start_time=end - int(seconds * 1e9),
            attributes={"db.system": "postgresql", "db.statement": sql[:MAX_STATEMENT_CHARS]},
        )
        if not ok:
            span.set_status(self.trace.Status(self.trace.StatusCode.ERROR))
        span.end(end_time=end)

    def shutdown(self) -> None:
        """Sends what is still batched."""
        self.provider.shutdown()


@contextmanager
def no_span() -> Iterator[None]:
    yield
