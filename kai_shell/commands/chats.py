"""``kai history``, ``kai get-chat`` and ``kai delete-chat``."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

import click

from kai_core._parts import tool_name_of
from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..ids import ChatId, resolve
from ..output import echo_json, local_time, to_snake, with_iso_times

json_option = click.option("--json-output", is_flag=True, help="Output as JSON.")


@click.command()
@click.option("-n", "--limit", default=10, show_default=True, help="Number of chats to show.")
@click.option(
    "--local",
    is_flag=True,
    help="From the event log (no token, no network), by last activity, with chats "
    "deleted on the server marked.",
)
@json_option
@click.pass_context
def history(ctx: click.Context, limit: int, local: bool, json_output: bool) -> None:
    """List chats, newest first (--local: most recently active first)."""
    runtime = runtime_of(ctx)
    if limit < 1:
        raise click.BadParameter("must be at least 1", param_hint="--limit")

    async def run() -> None:
        if local:
            chats, has_more = await _local_history(runtime, limit)
        else:
            async with runtime.client(with_log=False) as client:
                response = await client.get_history(limit=limit)
            chats = [to_snake(chat) for chat in response.chats]
            has_more = response.has_more
        if json_output:
            click.echo(json.dumps({"chats": chats, "hasMore": has_more}, default=str))
            return
        if not chats:
            click.echo("No chat history found.", err=True)
            return
        for chat in chats:
            title = chat.get("title") or "(no title)"
            if local:
                deleted = "  (deleted on server)" if chat.get("deleted_ts") else ""
                when = local_time(chat["last_ts"])
                click.echo(for_terminal(f"{chat['id']}  {when}  {title[:50]}{deleted}"))
            else:
                created = str(chat.get("created_at") or "?")[:16].replace("T", " ")
                click.echo(for_terminal(f"{chat['id']}  {created}  {title[:50]}"))
        if has_more:
            click.echo("... and more (use --limit to see more)", err=True)

    run_trio(ctx, run)


async def _local_history(runtime: Any, limit: int) -> tuple[list[dict[str, Any]], bool]:
    import trio

    log = runtime.log
    if log is None:
        from ..runtime import UsageError

        raise UsageError("--local needs the event log; drop --no-log")
    # most recently active first, as the log lists them
    rows = await trio.to_thread.run_sync(lambda: log.chats(limit=limit + 1))
    chats = [to_snake(row) for row in rows]
    for chat in chats:
        chat.setdefault("created_at", _iso(chat.get("first_ts")))
        with_iso_times(chat, "first_ts", "last_ts", "deleted_ts")
    return chats[:limit], len(chats) > limit


def _iso(ts: Any) -> str | None:
    if not isinstance(ts, (int, float)):
        return ts if isinstance(ts, str) else None
    from datetime import datetime

    try:
        return datetime.fromtimestamp(ts, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None  # out of what a date can show (an old import)


def format_part(part: dict[str, Any]) -> list[str]:
    """Lines showing one stored UI message part to a person."""
    kind = str(part.get("type", ""))
    if kind in ("text", "reasoning"):
        text = str(part.get("text", ""))
        return [text] if kind == "text" else [f"(thinking) {text}"]
    if kind == "step-start":
        return []
    if kind.startswith("tool-") or kind == "dynamic-tool":
        name = tool_name_of(part) or "?"
        lines = [f"[tool {name}: {part.get('state', '?')}] input: {_short(part.get('input'))}"]
        if "output" in part:
            lines.append(f"  output: {_short(part.get('output'))}")
        if part.get("errorText"):
            lines.append(f"  error: {part['errorText']}")
        approval = part.get("approval")
        if isinstance(approval, dict) and "approved" in approval:
            verdict = "approved" if approval["approved"] else "denied"
            reason = f" ({approval['reason']})" if approval.get("reason") else ""
            lines.append(f"  {verdict}{reason}")
        return lines
    if kind in ("source-url", "source-document"):
        return [f"[source] {part.get('title') or part.get('url') or part.get('filename')}"]
    if kind == "file":
        return [f"[file {part.get('mediaType')}]"]
    return [f"[{kind}]"]


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@click.command("get-chat")
@click.argument("chat_id", type=ChatId)
@json_option
@click.pass_context
def get_chat(ctx: click.Context, chat_id: str, json_output: bool) -> None:
    """Show a chat with its messages: text and tool calls."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        from ..server_chat import get_chat

        async with runtime.client(with_log=False) as client:
            chat = await get_chat(client, await resolve(runtime, chat_id, client))
        if json_output:
            echo_json(chat)
            return
        click.echo(f"Chat ID: {for_terminal(chat.id)}")
        click.echo(f"Title: {for_terminal(chat.title or '(no title)')}")
        click.echo(f"Messages: {len(chat.messages)}")
        click.echo("-" * 50)
        for message in chat.messages:
            click.echo("\n" + for_terminal(f"[{message.role.upper()}] {message.id}"))
            for part in message.parts:
                for line in format_part(part):
                    click.echo(for_terminal(line, multiline=True))

    run_trio(ctx, run)


@click.command("delete-chat")
@click.argument("chat_id", type=ChatId)
@click.option("--yes", "-y", is_flag=True, help="Skip confirmation.")
@click.pass_context
def delete_chat(ctx: click.Context, chat_id: str, yes: bool) -> None:
    """Delete a chat on the server (the local record stays; see `kai log forget`)."""
    runtime = runtime_of(ctx)
    from ..converse import stdin_is_terminal

    if not yes and not stdin_is_terminal():
        from ..errors import EXIT_CODES, fail

        fail("refusing to delete without confirmation; pass --yes", EXIT_CODES["usage"])

    async def run() -> None:
        import trio

        from ..server_chat import delete_chat

        async with runtime.client() as client:
            full_id = await resolve(runtime, chat_id, client)
            if not yes:
                question = f"Delete chat {full_id}?"
                if not await trio.to_thread.run_sync(click.confirm, question):
                    click.echo("Cancelled.")
                    return
            await delete_chat(client, full_id)
        click.echo(f"Deleted chat {full_id}")

    run_trio(ctx, run)
