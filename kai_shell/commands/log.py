"""``kai log``: where the event log is, what it holds, and moving data in and out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..output import to_snake
from ..runtime import Runtime, UsageError


def _log(runtime: Runtime) -> Any:
    log = runtime.log
    if log is None:
        raise UsageError("these commands manage the event log; drop --no-log")
    return log


@click.group()
def log() -> None:
    """Manage the local event log (every chat, recorded event by event)."""


@log.command()
@click.pass_context
def path(ctx: click.Context) -> None:
    """Print the log file's path."""
    runtime = runtime_of(ctx)
    from kai_core.log import default_log_path

    click.echo(str(Path(runtime.options.db) if runtime.options.db else default_log_path()))


@log.command()
@click.option("--json-output", is_flag=True, help="Output as JSON.")
@click.pass_context
def stats(ctx: click.Context, json_output: bool) -> None:
    """Counts of events, chats and messages, and the file size."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        import trio

        log = _log(runtime)
        data = to_snake(await trio.to_thread.run_sync(log.stats))
        if json_output:
            click.echo(json.dumps(data, default=str))
        else:
            for key, value in data.items():
                click.echo(f"{key}: {value}")

    run_trio(ctx, run)


@log.command()
@click.argument("chat_id", required=False)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "markdown"]),
    default="jsonl",
    show_default=True,
    help="jsonl: the events, re-importable; markdown: a transcript to read.",
)
@click.pass_context
def export(ctx: click.Context, chat_id: str | None, output: str | None, fmt: str) -> None:
    """Export one chat (or all) as JSON lines or a Markdown transcript."""
    runtime = runtime_of(ctx)
    if fmt == "markdown" and chat_id is None:
        raise click.UsageError("--format markdown needs a CHAT_ID")

    async def run() -> None:
        import trio

        from kai_core.exceptions import KaiNotFoundError

        log = _log(runtime)
        if chat_id is not None and not await trio.to_thread.run_sync(log.has_chat, chat_id):
            # checked first, so that -o does not leave an empty file behind
            raise KaiNotFoundError(f"no chat {chat_id} in the log {log.path}", code="not_found:log")

        def write() -> None:
            from kai_core.log import open_private

            out = open_private(output) if output else sys.stdout
            try:
                if fmt == "markdown":
                    text = log.export_markdown(chat_id)
                    if out is sys.stdout and sys.stdout.isatty():  # to read, not to keep
                        text = for_terminal(text, multiline=True)
                    out.write(text)
                else:
                    log.export_jsonl(chat_id, out)
            finally:
                if output:
                    out.close()

        await trio.to_thread.run_sync(write)

    run_trio(ctx, run)


@log.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--server", "from_server", is_flag=True, help="Import chats from the server instead.")
@click.option(
    "--chat", "chat_ids", multiple=True, help="With --server: only these chats (else all)."
)
@click.pass_context
def import_(
    ctx: click.Context, file: str | None, from_server: bool, chat_ids: tuple[str, ...]
) -> None:
    """Import a JSON lines export, or (--server) chats made elsewhere, e.g. in the web app.

    Importing twice adds nothing: messages already in the log are skipped.
    """
    runtime = runtime_of(ctx)
    if bool(file) == from_server:
        raise click.UsageError("give either FILE or --server")

    async def run() -> None:
        import trio

        log = _log(runtime)
        if file:
            count = await trio.to_thread.run_sync(log.import_jsonl, file)
            click.echo(f"Imported {count} events from {file}")
            return
        added = 0
        async with runtime.client(with_log=False) as client:
            ids = list(chat_ids)
            if not ids:
                async for chat in client.get_all_history():
                    ids.append(chat.id)
            for chat_id in ids:
                detail = await client.get_chat(chat_id)
                added += await trio.to_thread.run_sync(log.import_chat, detail)
        click.echo(f"Imported {added} messages from {len(ids)} chats")

    run_trio(ctx, run)


@log.command()
@click.pass_context
def rebuild(ctx: click.Context) -> None:
    """Drop the projections (chats, messages, search index) and rebuild them from the events."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        import trio

        count = await trio.to_thread.run_sync(_log(runtime).rebuild)
        click.echo(f"Rebuilt projections from {count} events")

    run_trio(ctx, run)


@log.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@click.pass_context
def backup(ctx: click.Context, dest: str) -> None:
    """Write a consistent copy of the log to DEST (VACUUM INTO)."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        import trio

        await trio.to_thread.run_sync(_log(runtime).backup, dest)
        click.echo(f"Backed up to {dest}")

    run_trio(ctx, run)


@log.command()
@click.argument("chat_id")
@click.option("--yes", "-y", is_flag=True, help="Skip confirmation.")
@click.pass_context
def forget(ctx: click.Context, chat_id: str, yes: bool) -> None:
    """Delete a chat from the local log for good (the server's copy is untouched)."""
    runtime = runtime_of(ctx)
    if not yes:
        from ..converse import stdin_is_terminal
        from ..errors import EXIT_CODES, fail

        if not stdin_is_terminal():
            fail("refusing to forget without confirmation; pass --yes", EXIT_CODES["usage"])
        if not click.confirm(f"Forget chat {chat_id} from the local log?"):
            click.echo("Cancelled.")
            return

    async def run() -> None:
        import trio

        from kai_core.exceptions import KaiNotFoundError

        log = _log(runtime)
        if not await trio.to_thread.run_sync(log.has_chat, chat_id):
            raise KaiNotFoundError(f"no chat {chat_id} in the log {log.path}", code="not_found:log")
        removed = await trio.to_thread.run_sync(log.forget, chat_id)
        click.echo(f"Forgot chat {chat_id} ({removed} events)")

    run_trio(ctx, run)
