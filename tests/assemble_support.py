"""The pinned event sequence of every captured fixture, and a helper that assembles one.

Shared by ``test_assemble.py`` and ``test_plugins_renderers.py``.
"""

from __future__ import annotations

from kai_core.assemble import MessageAssembler
from kai_core.chunks import decode_chunk
from kai_core.events import UnknownEvent

from .conftest import fixture_payloads

__all__ = ["EXPECTED", "assemble"]

EXPECTED = {
    "abort.sse": ["step-start", "text", "text", "text", "abort"],
    "boom.sse": ["step-start", "text", "text", "error", "data-usage", "finish"],
    "bucket-approved.sse": ["tool-call", "step-start", "text", "text", "data-usage", "finish"],
    "bucket-denied.sse": [
        "tool-output-denied", "step-start", "text", "text", "text", "data-usage", "finish",
    ],
    "bucket-request.sse": [
        "step-start", "text", "text", "text", "tool-call", "tool-call",
        "tool-approval-request", "data-usage", "finish",
    ],
    "dynamic-tool.sse": [
        "step-start", "text", "text", "tool-call", "tool-call", "tool-call", "data-usage",
        "step-start", "text", "text", "data-usage", "finish",
    ],
    "hello.sse": ["step-start"] + ["text"] * 5 + ["data-usage", "finish"],
    "image.sse": ["step-start", "file", "text", "text", "data-usage", "finish"],
    "invalid-tool-input.sse": [
        "step-start", "tool-call", "tool-input-error", "tool-output-error", "data-usage",
        "step-start",
    ] + ["text"] * 19 + ["data-usage", "finish"],
    "keepalive.sse": ["step-start"] + ["text"] * 12 + ["data-usage", "finish"],
    "metadata.sse": ["step-start"] + ["text"] * 5 + ["data-usage", "message-metadata", "finish"],
    "slow-dropped.sse": ["step-start", "text", "text"],
    "sources.sse": ["step-start", "source", "source"] + ["text"] * 4 + ["data-usage", "finish"],
    "tables.sse": [
        "step-start", "text", "text", "tool-call", "tool-call", "tool-call", "data-usage",
        "step-start", "text", "text", "text", "text", "text", "data-usage", "finish",
    ],
    "think.sse": ["step-start"] + ["reasoning"] * 5 + ["text"] * 3 + ["data-usage", "finish"],
}  # fmt: skip


def assemble(
    name: str, assembler: MessageAssembler | None = None, *, every: bool = False
) -> tuple[MessageAssembler, list]:
    """Feed a fixture; its events (only the typed ones unless ``every``)."""
    assembler = assembler or MessageAssembler()
    events = []
    for payload in fixture_payloads(name):
        events.extend(assembler.feed(decode_chunk(payload)))
    if not every:
        events = [e for e in events if not isinstance(e, UnknownEvent)]
    return assembler, events
