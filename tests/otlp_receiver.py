"""A tiny OTLP/HTTP receiver on loopback for the telemetry tests.

It decodes what arrives with the official ``opentelemetry-proto`` messages.
``mode`` says how it answers: ``ok`` (200), ``refuse`` (400, which the
exporter does not retry) or ``slow`` (no answer until the test ends).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Receiver:
    """What the receiver got: raw bodies by path, and decoded spans and metrics."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.bodies: list[tuple[str, bytes]] = []
        self.release = threading.Event()
        self.url = ""

    def raw(self) -> bytes:
        return b"".join(body for _, body in self.bodies)

    def spans(self) -> list[dict[str, Any]]:
        """Every span received, flattened: name, ids (hex), kind, attributes, events, status, resource."""
        found = []
        for path, body in self.bodies:
            if path != "/v1/traces":
                continue
            request = ExportTraceServiceRequest.FromString(body)
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        found.append(
                            {
                                "name": s.name,
                                "trace_id": s.trace_id.hex(),
                                "span_id": s.span_id.hex(),
                                "parent_id": s.parent_span_id.hex(),
                                "kind": s.kind,
                                "start": s.start_time_unix_nano,
                                "end": s.end_time_unix_nano,
                                "attributes": {a.key: _value(a.value) for a in s.attributes},
                                "events": [
                                    (e.name, {a.key: _value(a.value) for a in e.attributes})
                                    for e in s.events
                                ],
                                "status": s.status.code,
                                "resource": resource,
                            }
                        )
        return found

    def metric_names(self) -> set[str]:
        names = set()
        for path, body in self.bodies:
            if path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                for rm in request.resource_metrics:
                    for sm in rm.scope_metrics:
                        names.update(m.name for m in sm.metrics)
        return names


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind) if kind else None


@contextmanager
def otlp_receiver(mode: str = "ok") -> Iterator[Receiver]:
    """Serve on a free loopback port until the block ends."""
    receiver = Receiver(mode)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.bodies.append((self.path, body))
            if receiver.mode == "slow":
                receiver.release.wait()
            status = 400 if receiver.mode == "refuse" else 200
            reply = ExportTraceServiceResponse().SerializeToString()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except OSError:  # a slow answer the exporter stopped waiting for
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
