"""The OpenTelemetry side: providers, the OTLP/HTTP exporters, and sending spans.

Imported only when telemetry is on (or for a backfill). Spans go through the
SDK's tracer (so samplers, limits and the resource apply as configured by
the ``OTEL_*`` variables) with the ids :mod:`._spans` derived, and through a
``BatchSpanProcessor``: the chat's thread only queues them; the SDK's own
thread sends them. At exit, :meth:`Exporter.close` flushes within a bounded
time, in a thread of its own, and says in one line if the collector did not
take everything (the local log has it all anyway).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from ._spans import SpanData

__all__ = ["Exporter", "FLUSH_TIMEOUT_ENV", "default_flush_timeout"]

FLUSH_TIMEOUT_ENV = "KAI_TELEMETRY_FLUSH_TIMEOUT"
"""Seconds the exit may wait for the collector (default 2)."""
SCOPE = "kai"
_KINDS = {"client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL}
# Where the SDK reports export failures: the OTLP/HTTP exporters and the batch
# and periodic processors (an application's own OpenTelemetry logs are left alone).
_NOISY_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.http",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
)


def default_flush_timeout() -> float:
    """``KAI_TELEMETRY_FLUSH_TIMEOUT`` in seconds, 2 when unset or not a number."""
    try:
        return max(0.0, float(os.environ.get(FLUSH_TIMEOUT_ENV, "2")))
    except ValueError:
        return 2.0


class _PlannedIds(IdGenerator):
    """Hands the tracer the ids a span was given in advance (deterministic ids)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class _Counting(SpanExporter):
    """Wraps an exporter to remember whether any batch failed (for the one warning)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class Exporter:
    """Sends :class:`SpanData` and the GenAI metrics through the OpenTelemetry SDK.

    :param span_exporter: where spans go (default: OTLP/HTTP per ``OTEL_*``).
    :param metric_reader: how metrics leave (default: a periodic OTLP/HTTP reader);
        None with ``metrics=False``.
    :param flush_timeout: the most :meth:`close` waits for the collector, in seconds.
    :param warn: called with the one warning line when something was not sent.
    :param processor: the span processor factory (default ``BatchSpanProcessor``).
    """

    def __init__(
        self,
        *,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
        metrics: bool = True,
        flush_timeout: float | None = None,
        warn: Callable[[str], None] | None = None,
        processor: Callable[[SpanExporter], SpanProcessor] = BatchSpanProcessor,
    ) -> None:
        self.flush_timeout = default_flush_timeout() if flush_timeout is None else flush_timeout
        self.warn = warn
        # The SDK logs every failed export (with a traceback); kai says it once, at exit.
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        resource = Resource.create(_default_service())
        if span_exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter = OTLPSpanExporter(timeout=self.flush_timeout or None)
        self._spans = _Counting(span_exporter)
        self._ids = _PlannedIds()
        self.tracer_provider = TracerProvider(
            resource=resource, id_generator=self._ids, shutdown_on_exit=False
        )
        self.tracer_provider.add_span_processor(processor(self._spans))
        self.tracer = self.tracer_provider.get_tracer(SCOPE)
        self.meter_provider: MeterProvider | None = None
        if metrics:
            if metric_reader is None:
                metric_reader = _otlp_metric_reader(self.flush_timeout)
            self.meter_provider = MeterProvider(
                resource=resource, metric_readers=[metric_reader], shutdown_on_exit=False
            )
            meter = self.meter_provider.get_meter(SCOPE)
            self._tokens = meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}", description="Tokens used per request"
            )
            self._duration = meter.create_histogram(
                "gen_ai.client.operation.duration", unit="s", description="Request duration"
            )
            self._first_chunk = meter.create_histogram(
                "gen_ai.client.operation.time_to_first_chunk",
                unit="s",
                description="Time from the request to the first chunk of the answer",
            )
        self._closed = False

    def send(self, spans: Sequence[SpanData], *, metrics: bool = True) -> None:
        """Queue finished spans (and, for live requests, record their metrics)."""
        for data in spans:
            self._send_span(data)
            if metrics and self.meter_provider is not None and data.kind == "client":
                self._record_metrics(data)

    def _send_span(self, data: SpanData) -> None:
        parent = None
        if data.parent_id is not None:
            context = trace.SpanContext(
                data.trace_id, data.parent_id, is_remote=False, trace_flags=trace.TraceFlags(1)
            )
            parent = trace.set_span_in_context(trace.NonRecordingSpan(context))
        self._ids.trace_id, self._ids.span_id = data.trace_id, data.span_id
        span = self.tracer.start_span(
            data.name,
            context=parent,
            kind=_KINDS[data.kind],
            attributes=data.attributes,
            start_time=data.start_ns,
        )
        for event in data.events:
            span.add_event(event.name, event.attributes, timestamp=event.time_ns)
        if data.error is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=data.end_ns)

    def _record_metrics(self, data: SpanData) -> None:
        a = data.attributes
        common: dict[str, Any] = {
            "gen_ai.operation.name": a["gen_ai.operation.name"],
            "gen_ai.provider.name": a["gen_ai.provider.name"],
        }
        for name in ("server.address", "kai.backend"):
            if name in a:
                common[name] = a[name]
        if data.error is not None:
            common["error.type"] = data.error
        self._duration.record((data.end_ns - data.start_ns) / 1e9, common)
        if data.first_chunk_ns is not None:
            self._first_chunk.record((data.first_chunk_ns - data.start_ns) / 1e9, common)
        for kind, key in (
            ("input", "gen_ai.usage.input_tokens"),
            ("output", "gen_ai.usage.output_tokens"),
        ):
            if key in a:
                self._tokens.record(a[key], common | {"gen_ai.token.type": kind})

    def close(self) -> bool:
        """Flush within :attr:`flush_timeout` seconds; True when everything was sent.

        The flush runs in a daemon thread: a collector that is down or slow
        costs at most the timeout, never a hang. One warning line otherwise.
        """
        if self._closed:
            return True
        self._closed = True
        done = threading.Event()

        def flush() -> None:
            self.tracer_provider.force_flush()
            if self.meter_provider is not None:
                self.meter_provider.force_flush()
            done.set()

        threading.Thread(target=flush, name="kai-telemetry-flush", daemon=True).start()
        finished = done.wait(self.flush_timeout)
        # Stop the exporters: a retry still under way gives up, nothing new is sent.
        self._spans.inner.shutdown()
        ok = finished and not self._spans.failed
        if not ok and self.warn is not None:
            why = (
                f"the collector did not answer within {self.flush_timeout:g} s"
                if not finished
                else f"{self._spans.failed} span(s) were refused or could not be sent"
            )
            self.warn(
                f"warning: telemetry: {why} ({_endpoint()}); the local event log has everything"
            )
        return ok


def _default_service() -> dict[str, str]:
    # OTEL_SERVICE_NAME or a service.name in OTEL_RESOURCE_ATTRIBUTES win over "kai".
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    return {} if named else {"service.name": "kai"}


def _endpoint() -> str:
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or "http://localhost:4318"
    )


def _otlp_metric_reader(timeout: float) -> MetricReader:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporter: MetricExporter = OTLPMetricExporter(timeout=timeout or None)
    return PeriodicExportingMetricReader(exporter)
