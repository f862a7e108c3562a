"""The observer plugin: log records in, spans and metrics out."""

from __future__ import annotations

from collections.abc import Callable

from kai_core.hookspecs import hookimpl
from kai_core.records import LogRecord

from ._export import Exporter
from ._spans import SpanBuilder

__all__ = ["TelemetryPlugin"]


class TelemetryPlugin:
    """Implements ``kai_observe_event``: each record feeds the span builder.

    Finished spans are queued for the SDK's export thread; nothing here
    touches the network. :meth:`close` ends what is still open and flushes.
    """

    def __init__(
        self,
        exporter: Exporter,
        *,
        capture_content: bool = False,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.exporter = exporter
        self.builder = SpanBuilder(capture_content=capture_content, redact=redact)

    @hookimpl
    def kai_observe_event(self, record: LogRecord) -> None:
        """Feed one logged record; queue the spans it finished."""
        spans = self.builder.feed(record)
        if spans:
            self.exporter.send(spans)

    def close(self) -> bool:
        """End open spans and flush (bounded); True when everything was sent."""
        self.exporter.send(self.builder.close())
        return self.exporter.close()
