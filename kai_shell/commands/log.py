"""``kai log``: where the event log is, what it holds, and moving data in and out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from kai_core._terminal import is_terminal
from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..ids import ChatId, resolve
from ..output import local_time, to_snake, with_iso_times
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
            click.echo(json.dumps(with_iso_times(data, "first_ts", "last_ts"), default=str))
        else:
            for key, value in data.items():
                shown = local_time(value) if key in ("first_ts", "last_ts") else value
                click.echo(f"{key}: {shown}")

    run_trio(ctx, run)


@log.command()
@click.argument("chat_id", type=ChatId, required=False)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "markdown", "html"]),
    default="jsonl",
    show_default=True,
    help="jsonl: the events, re-importable; markdown: a transcript to read; "
    "html: a self-contained page to open in a browser or share.",
)
@click.option(
    "--include-tool-output",
    is_flag=True,
    help="html: keep tool outputs of any size (else those over 4 KiB are left out).",
)
@click.pass_context
def export(
    ctx: click.Context,
    chat_id: str | None,
    output: str | None,
    fmt: str,
    include_tool_output: bool,
) -> None:
    """Export one chat (or all) as JSON lines, a Markdown transcript or an HTML page.

    CHAT_ID may be the first 4+ characters of the id."""
    runtime = runtime_of(ctx)
    word = chat_id
    if fmt != "jsonl" and chat_id is None:
        raise click.UsageError(f"--format {fmt} needs a CHAT_ID")

    async def run() -> None:
        import trio

        from kai_core.exceptions import KaiNotFoundError

        log = _log(runtime)
        chat_id = await resolve(runtime, word) if word is not None else None
        if chat_id is not None and not await trio.to_thread.run_sync(log.has_chat, chat_id):
            # checked first, so that -o does not leave an empty file behind
            raise KaiNotFoundError(f"no chat {chat_id} in the log {log.path}", code="not_found:log")

        def transcript() -> str:
            if fmt == "markdown":
                return str(log.export_markdown(chat_id))
            token = runtime.options.resolved_token()  # masked, should the log hold it
            page = log.export_html(
                chat_id, include_tool_output=include_tool_output, secrets=[token or ""]
            )
            return str(page)

        def write() -> None:
            from kai_core.log import check_output, write_private

            if output:
                check_output(output, log=log.path)  # refused before any work
            if fmt != "jsonl":
                text = transcript()
                if output:
                    write_private(output, text, log=log.path)
                elif is_terminal(
                    sys.stdout
                ):  # to read, not to keep: no escape acts on the terminal
                    sys.stdout.write(for_terminal(text, multiline=True))
                else:
                    sys.stdout.write(text)
            else:
                log.export_jsonl(chat_id, output or sys.stdout)

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
@click.argument("chat_id", type=ChatId)
@click.option("--yes", "-y", is_flag=True, help="Skip confirmation.")
@click.pass_context
def forget(ctx: click.Context, chat_id: str, yes: bool) -> None:
    """Delete a chat from the local log for good (the server's copy is untouched).

    CHAT_ID may be a prefix; the question names the whole id it stands for.
    """
    runtime = runtime_of(ctx)
    # Resolved before the question: what is confirmed is what is forgotten.
    chat_id = run_trio(ctx, resolve, runtime, chat_id)
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
