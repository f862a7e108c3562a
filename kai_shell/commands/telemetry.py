"""``kai telemetry backfill``: send chats already in the local log as OpenTelemetry traces."""

from __future__ import annotations

import click

from ..cli import runtime_of
from ..errors import EXIT_CODES, fail, reported, require_extra
from ..runtime import UsageError


@click.group()
def telemetry() -> None:
    """Team telemetry (OpenTelemetry GenAI traces; needs kai[otel])."""


@telemetry.command()
@click.argument("chat_ids", nargs=-1)
@click.pass_context
def backfill(ctx: click.Context, chat_ids: tuple[str, ...]) -> None:
    """Send recorded chats (all, or CHAT_IDS) to the OTLP endpoint of OTEL_* variables.

    Trace and span ids come from the chat, turn and tool call ids, so sending
    a chat again (or after it was exported live) sends the same ids. Traces
    only: metrics are for live requests.
    """
    runtime = runtime_of(ctx)
    require_extra("otel", "kai telemetry backfill")
    with reported(runtime.options.debug):
        log = runtime.log
        if log is None:
            raise UsageError("backfill reads the event log; drop --no-log")
        from kai_plugins.telemetry import capture_content, redactor
        from kai_plugins.telemetry._export import Exporter
        from kai_plugins.telemetry._spans import SpanBuilder

        for chat_id in chat_ids:
            if not log.has_chat(chat_id):
                fail(f"chat {chat_id!r} is not in the log", EXIT_CODES["not_found"])
        exporter = Exporter(metrics=False, warn=runtime.say)
        builder = SpanBuilder(
            capture_content=capture_content(), redact=redactor(runtime.options.resolved_token())
        )
        sent = 0
        wanted: list[str | None] = list(chat_ids) or [None]  # None: every chat
        for wanted_chat in wanted:
            for event in log.events(wanted_chat):
                spans = builder.feed(event)
                exporter.send(spans, metrics=False)
                sent += len(spans)
        spans = builder.close()
        exporter.send(spans, metrics=False)
        sent += len(spans)
        if not exporter.close():
            fail(f"telemetry backfill: {sent} span(s) not all sent", EXIT_CODES["unreachable"])
        click.echo(f"sent {sent} span(s)")
