"""``kai replay`` and ``kai search``: read only the event log, no token, no network."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import click

from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..ids import ChatId, most_recent, resolve
from ..output import echo_json, local_time, to_snake, with_iso_times
from ..runtime import Runtime, UsageError

MAX_PAUSE = 2.0
"""Longest pause (seconds, before the speed factor) a timed replay makes."""

_UNSEEN_EVENTS = (
    "StepStartEvent",
    "UsageEvent",
    "FinishEvent",
    "MessageMetadataEvent",
    "DataEvent",
    "UnknownEvent",
)
"""Events a reader does not see as they arrive: no pause is spent waiting for them."""


def shows_something(step: Any, text: str | None) -> bool:
    """True when a replay step puts something on the screen (a user message or
    an event a person sees), so that the pause before it is worth keeping."""
    if text is not None:
        return True
    return any(type(event).__name__ not in _UNSEEN_EVENTS for event in step.events)


def user_text(body: bytes | str) -> str | None:
    """The text of a logged user message (None for an assistant message)."""
    import json

    message = json.loads(body).get("message") or {}
    if message.get("role") != "user":
        return None
    return "".join(p.get("text", "") for p in message.get("parts", []) if p.get("type") == "text")


def _log(runtime: Runtime) -> Any:
    log = runtime.log
    if log is None:
        raise UsageError("this command reads the event log; drop --no-log")
    return log


@click.command()
@click.argument("chat_id", type=ChatId, required=False)
@click.option(
    "--speed", type=float, default=1.0, show_default=True, help="Pace factor (2 = twice as fast)."
)
@click.option("--instant", is_flag=True, help="No pauses: print the whole chat at once.")
@click.option(
    "--max-pause",
    type=click.FloatRange(0),
    default=MAX_PAUSE,
    show_default=True,
    help="Longest wait (seconds) between two things shown; time with nothing to show is skipped.",
)
@click.option("--json-output", is_flag=True, help="One JSON object per event per line.")
@click.pass_context
def replay(
    ctx: click.Context,
    chat_id: str | None,
    speed: float,
    instant: bool,
    max_pause: float,
    json_output: bool,
) -> None:
    """Replay a recorded chat from the log (default: the most recent one), at its
    recorded pace or instantly. CHAT_ID may be the first 4+ characters of the id."""
    runtime = runtime_of(ctx)
    if speed <= 0:
        raise click.BadParameter("must be greater than 0", param_hint="--speed")
    if json_output:
        runtime.options.renderer = "json"

    async def run() -> None:
        import trio

        from kai_core.exceptions import KaiNotFoundError

        log = _log(runtime)
        found = await resolve(runtime, chat_id) if chat_id else await most_recent(runtime)
        if not await trio.to_thread.run_sync(log.has_chat, found):
            raise KaiNotFoundError(f"no chat {found} in the log {log.path}", code="not_found:log")
        steps = await trio.to_thread.run_sync(lambda: list(log.replay_steps(found)))
        renderer = runtime.guarded_renderer(sys.stdout)
        open_turn = False
        for step, text, pause in paced(steps, max_pause=0.0 if instant else max_pause):
            if pause:
                await trio.sleep(pause / speed)
            if text is not None:
                if open_turn:
                    renderer.end()
                if not json_output:
                    click.echo(f"\n>>> {for_terminal(text, multiline=True)}")
                renderer.begin(text)
                open_turn = True
            for event in step.events:
                renderer.event(event)
        renderer.end()

    run_trio(ctx, run)


def paced(steps: Iterable[Any], *, max_pause: float) -> Iterator[tuple[Any, str | None, float]]:
    """``(step, user text or None, seconds to wait before it)`` for each replay step.

    The wait is the recorded time since the last step that showed something,
    capped at ``max_pause``; a step that shows nothing (a usage count, the
    end of a step, a vote much later) is not waited for. So the answer keeps
    its recorded rhythm, and a replay never sits on dead air.
    """
    shown_at: float | None = None  # when the last thing shown was recorded
    for step in steps:
        record = step.record
        text = None
        if record.origin == "client" and record.type in ("user-message", "imported-message"):
            text = user_text(record.body)
        if not shows_something(step, text):
            yield step, text, 0.0
            continue
        pause = 0.0 if shown_at is None else min(max(record.ts - shown_at, 0.0), max_pause)
        shown_at = record.ts
        yield step, text, pause


def _date(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD)") from None


@click.command()
@click.argument("query")
@click.option("--chat", "chat_id", help="Only this chat.")
@click.option(
    "--role", type=click.Choice(["user", "assistant"]), help="Only user or assistant messages."
)
@click.option("--tool", help="Only messages that called this tool.")
@click.option("--since", help="Only from this date (YYYY-MM-DD[THH:MM]).")
@click.option("--until", help="Only until this date.")
@click.option("-n", "--limit", default=20, show_default=True, help="At most this many results.")
@click.option(
    "--raw", is_flag=True, help="Pass FTS5 query syntax through (AND, OR, NEAR, prefix*)."
)
@click.option("--json-output", is_flag=True, help="One JSON object per result per line.")
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    chat_id: str | None,
    role: str | None,
    tool: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    raw: bool,
    json_output: bool,
) -> None:
    """Full-text search over every recorded chat: your words, answers, tools and their data."""
    runtime = runtime_of(ctx)
    since_ts, until_ts = _date(since), _date(until)

    async def run() -> None:
        import trio

        from kai_core.exceptions import KaiLogError

        log = _log(runtime)
        try:
            hits = await trio.to_thread.run_sync(
                lambda: log.search(
                    query,
                    chat_id=chat_id,
                    role=role,
                    tool=tool,
                    since=since_ts,
                    until=until_ts,
                    limit=limit,
                    raw=raw,
                )
            )
        except KaiLogError as exc:
            # With --raw, SQLite reports some FTS5 syntax errors (e.g. an
            # unterminated string) in words the log does not recognise as a bad
            # query; they are the query's fault all the same, not the log's.
            if raw and exc.code == "log:error" and "database" not in (exc.cause or ""):
                raise UsageError(
                    f"invalid search syntax in {query!r}: {exc.cause or exc.message}; "
                    "search without --raw to look for the words as typed"
                ) from None
            raise
        if json_output:
            for hit in hits:
                echo_json(with_iso_times(to_snake(hit), "ts"))
            return
        if not hits:
            click.echo("No matches.")
            return
        for hit in hits:
            title = getattr(hit, "title", None) or "(no title)"
            click.echo(
                for_terminal(f"{hit.chat_id}  {local_time(hit.ts)}  {title[:40]}  [{hit.role}]")
            )
            click.echo(f"    {for_terminal(' '.join(hit.snippet.split()))}")  # one line per hit

    run_trio(ctx, run)
