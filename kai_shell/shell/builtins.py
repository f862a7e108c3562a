"""The built-in slash commands of ``kai-shell``.

Each is an async ``handler(shell, args)`` registered on :data:`BUILTINS`
(``shell`` a :class:`~.context.ShellContext`) with its usage string (which drives ``/help`` and completion). Commands
that read the log work offline; those marked ``needs_server`` say so
instead of running while the shell is offline.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from kai_core._terminal import is_terminal
from kai_core.exceptions import KaiError
from kai_core.policy import ApprovalDecision
from kai_core.sanitize import for_terminal

from .approval import DENIED
from .clipboard import copy_to_terminal, write_to_file
from .commands import CommandRegistry, split_args
from .editor import EditorError, edit_text
from .state import ChatEntry

if TYPE_CHECKING:
    from .context import ShellContext

__all__ = ["BUILTINS"]

BUILTINS = CommandRegistry()
"""The built-in commands; each shell works on its own copy (plus plugin commands)."""

REPLAY_MAX_PAUSE = 3.0  # seconds: long silences in a recorded chat are shortened


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "?"  # out of what a date can show (an old import)


def _need_log(shell: ShellContext) -> Any:
    log = shell.log
    if log is None:
        shell.error("the event log is off (--no-log); this command reads it")
    return log


def _message_text(message: Any) -> str:
    parts = message.get("parts", []) if isinstance(message, dict) else []
    return "".join(
        p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text"
    )


# -- chats ----------------------------------------------------------------------------


@BUILTINS.command("new")
async def new(shell: ShellContext, args: str) -> None:
    """Start a new chat."""
    chat_id = shell.new_chat()
    shell.dim(f"new chat {chat_id}")


@BUILTINS.command("chats", "[FILTER]")
async def chats(shell: ShellContext, args: str) -> None:
    """List recorded chats (from the log; works offline), newest first."""
    log = _need_log(shell)
    if log is None:
        return
    found = await trio.to_thread.run_sync(lambda: log.chats(limit=200))
    shell.state.chats = tuple(ChatEntry(c.id, c.title, c.last_ts) for c in found)
    words = args.lower().split()
    shown = 0
    for chat in found:
        title = chat.title or "(untitled)"
        if words and not all(w in title.lower() or chat.id.startswith(w) for w in words):
            continue
        mark = "*" if chat.id == shell.state.chat_id else " "
        deleted = "  (deleted on server)" if chat.deleted_ts else ""
        shell.echo(
            f"{mark} {chat.id}  {_when(chat.last_ts)}  {chat.message_count:>3} msgs  "
            f"{title[:50]}{deleted}"
        )
        shown += 1
    if not shown:
        shell.dim("no recorded chats" + (" match" if words else " yet"))


@BUILTINS.command("history", "[N]", needs_server=True)
async def history(shell: ShellContext, args: str) -> None:
    """List your chats on the server (N, default 20); /chats lists recorded ones."""
    assert shell.client is not None
    try:
        limit = int(args) if args.strip() else 20
    except ValueError:
        shell.error(f"N must be a number, not {args!r}")
        return
    page = await shell.client.get_history(limit=limit)
    local = {c.id for c in shell.state.chats}
    for chat in page.chats:
        mark = "*" if chat.id == shell.state.chat_id else " "
        rec = "" if chat.id in local else "  (not recorded here)"
        when = (chat.updated_at or chat.created_at or "")[:16].replace("T", " ")
        shell.echo(f"{mark} {chat.id}  {when}  {(chat.title or '(untitled)')[:50]}{rec}")
    if not page.chats:
        shell.dim("no chats on the server")
    elif page.has_more:
        shell.dim(f"(more on the server: /history {limit * 2})")


@BUILTINS.command("open", "CHAT")
async def open_chat(shell: ShellContext, args: str) -> None:
    """Switch to a chat and show it (from the log, else from the server)."""
    chat_id = shell.resolve_chat(args)
    if chat_id is None:
        shell.error("usage: /open CHAT (TAB completes ids and titles)")
        return
    log = shell.log
    detail = await trio.to_thread.run_sync(log.get_chat, chat_id) if log is not None else None
    if detail is None and shell.client is not None:
        from ..server_chat import get_chat

        server_chat = await get_chat(shell.client, chat_id)
        shell.switch_chat(chat_id, server_chat.title)
        if log is not None:
            await trio.to_thread.run_sync(log.import_chat, server_chat)
            shell.refresh_chats()
        for message in server_chat.messages:
            text = _message_text({"parts": message.parts})
            who = "you" if message.role == "user" else "kai"
            shell.echo(f"{who}> {text}" if text else f"{who}> ({len(message.parts)} parts)")
        shell.dim(f"chat {chat_id} (from the server)")
        return
    if detail is None:
        shell.error(f"no chat {chat_id} in the log" + ("" if shell.client else " (offline)"))
        return
    shell.switch_chat(chat_id, detail.chat.title)
    shell.state.tokens_in = detail.chat.prompt_tokens
    shell.state.tokens_out = detail.chat.completion_tokens
    shell.state.message_ids = tuple(m.id for m in detail.messages if m.role == "assistant")
    shell.state.add_tool_names(*(c.tool_name for c in detail.tool_calls))
    await _show(shell, chat_id, speed=None)
    shell.dim(f"chat {chat_id}: {detail.chat.title or ''} — go on typing to continue it")


@BUILTINS.command("delete", "CHAT", needs_server=True)
async def delete(shell: ShellContext, args: str) -> None:
    """Delete a chat on the server (the recorded copy stays in the log)."""
    assert shell.client is not None
    chat_id = shell.resolve_chat(args)
    if chat_id is None:
        shell.error("usage: /delete CHAT")
        return
    title = shell.state.title_of(chat_id) or ""
    if not await shell.confirm(f"Delete chat {chat_id} {title!r} on the server?"):
        shell.dim("not deleted")
        return
    from ..server_chat import delete_chat

    await delete_chat(shell.client, chat_id)  # "no chat ... on the server" when unknown
    shell.echo(f"deleted {chat_id} on the server")
    if chat_id == shell.state.chat_id:
        shell.new_chat()
    shell.refresh_chats()


# -- the log ------------------------------------------------------------------------


async def _show(shell: ShellContext, chat_id: str, *, speed: float | None) -> None:
    """Render a recorded chat, user messages included, instantly or at its pace."""
    log = shell.log
    assert log is not None
    steps = await trio.to_thread.run_sync(lambda: list(log.replay_steps(chat_id)))
    renderer = shell.renderer
    began = False
    previous: float | None = None
    with shell.interruptible("replaying") as scope:
        try:
            for step in steps:
                record = step.record
                is_user = record.origin == "client" and record.type == "user-message"
                if not step.events and not is_user:
                    continue
                if speed is not None and previous is not None:
                    await trio.sleep(min(max(record.ts - previous, 0) / speed, REPLAY_MAX_PAUSE))
                previous = record.ts
                if is_user:
                    if began:
                        renderer.end()
                    body = msgspec.json.decode(record.body)
                    text = _message_text(body.get("message")) if isinstance(body, dict) else ""
                    shell.styled(f"you> {text}", "user")
                    renderer.begin(text)
                    began = True
                    continue
                if not began:
                    renderer.begin(None)
                    began = True
                for event in step.events:
                    renderer.event(event)
        finally:
            if began:
                renderer.end()
    if scope.cancelled_caught:
        shell.warn("replay stopped")


@BUILTINS.command("replay", "CHAT [SPEED]")
async def replay(shell: ShellContext, args: str) -> None:
    """Replay a recorded chat at its pace (SPEED 2 = twice as fast, 0 = at once)."""
    if _need_log(shell) is None:
        return
    words = split_args(args)
    if not words:
        shell.error("usage: /replay CHAT [SPEED]")
        return
    chat_id = shell.resolve_chat(words[0])
    try:
        speed = float(words[1]) if len(words) > 1 else 1.0
    except ValueError:
        shell.error(f"SPEED must be a number, not {words[1]!r}")
        return
    if speed < 0:
        shell.error("SPEED must not be negative")
        return
    assert chat_id is not None and shell.log is not None
    if await trio.to_thread.run_sync(shell.log.get_chat, chat_id) is None:
        shell.error(f"no chat {chat_id} in the log")
        return
    await _show(shell, chat_id, speed=speed or None)


@BUILTINS.command("search", "QUERY...")
async def search(shell: ShellContext, args: str) -> None:
    """Search every recorded chat: your words, answers, tool names and tool data."""
    log = _need_log(shell)
    if log is None:
        return
    if not args.strip():
        shell.error('usage: /search QUERY (words, "a phrase", prefix*)')
        return
    # Private-use marks, turned into the highlight once the snippet (server
    # text) has been made safe: the highlight's escapes are then the only ones.
    marks = ("\ue000", "\ue001")
    shown = ("\x1b[1;33m", "\x1b[0m") if shell.color else ("[", "]")
    hits = await trio.to_thread.run_sync(lambda: log.search(args, limit=20, marks=marks))
    if not hits:
        shell.dim("no matches")
        return
    for hit in hits:
        title = (hit.title or "(untitled)")[:40]
        shell.echo(f"{hit.chat_id}  {_when(hit.ts)}  {title}  [{hit.role}]")
        snippet = for_terminal(" ".join(hit.snippet.split()))
        snippet = snippet.replace(marks[0], shown[0]).replace(marks[1], shown[1])
        shell.echo("    " + snippet, safe=True)
    shell.dim("/open CHAT or /replay CHAT to see one (TAB completes)")


@BUILTINS.command("export", "CHAT [FILE]")
async def export(shell: ShellContext, args: str) -> None:
    """Export a chat as Markdown (or JSON lines when FILE ends in .jsonl); no FILE: print it."""
    log = _need_log(shell)
    if log is None:
        return
    words = split_args(args)
    if not words:
        shell.error("usage: /export CHAT [FILE]  (CHAT '.' is the current chat)")
        return
    chat_id = shell.resolve_chat(words[0])
    assert chat_id is not None
    if len(words) < 2:
        shell.echo(await trio.to_thread.run_sync(log.export_markdown, chat_id))
        return
    shell.echo(await trio.to_thread.run_sync(_export_to_file, log, chat_id, words[1]))


def _export_to_file(log: Any, chat_id: str, file: str) -> str:
    path = Path(file).expanduser()
    if path.suffix == ".jsonl":
        count = log.export_jsonl(chat_id, path)
        return f"wrote {count} events to {path}"
    write_to_file(log.export_markdown(chat_id), str(path), log=log.path)
    return f"wrote {path}"


@BUILTINS.command("copy", "[FILE]")
async def copy(shell: ShellContext, args: str) -> None:
    """Copy the last answer to FILE, or to the terminal's clipboard (OSC 52)."""
    text = shell.state.last_answer
    if not text and shell.log is not None and shell.state.chat_id:
        detail = await trio.to_thread.run_sync(shell.log.get_chat, shell.state.chat_id)
        answers = [m.text for m in detail.messages if m.role == "assistant"] if detail else []
        text = answers[-1] if answers else ""
    if not text:
        shell.error("no answer to copy yet")
        return
    if args.strip():
        log_path = shell.log.path if shell.log is not None else None
        path = await trio.to_thread.run_sync(
            lambda: write_to_file(text, args.strip(), log=log_path)
        )
        shell.echo(f"copied the last answer ({len(text)} characters) to {path}")
        return
    if not is_terminal(shell.out):
        shell.error("not a terminal: use /copy FILE")
        return
    try:
        copy_to_terminal(text, shell.out)
    except ValueError as exc:
        shell.error(str(exc))
        return
    shell.echo(f"copied the last answer ({len(text)} characters) to the clipboard")


# -- talking --------------------------------------------------------------------------


@BUILTINS.command("edit")
async def edit(shell: ShellContext, args: str) -> None:
    """Compose a message in $EDITOR, then send it (Ctrl-X Ctrl-E edits the line instead)."""
    try:
        text = await trio.to_thread.run_sync(edit_text, args)
    except EditorError as exc:
        shell.error(str(exc))
        return
    if not text.strip():
        shell.dim("empty message: nothing sent")
        return
    shell.styled(f"you> {text}", "user")
    await shell.send(text)


def _pending_target(shell: ShellContext, words: list[str], *, approved: bool) -> str | None:
    session = shell.session
    pending = list(session.pending) if session is not None else []
    if not pending:
        shell.error("no tool call waits for approval")
        return None
    if words and words[0] in pending:
        return words.pop(0)
    if len(pending) == 1:
        if approved and words:
            shell.error(f"no pending tool call {words[0]!r} (pending: {pending[0]})")
            return None
        return pending[0]
    shell.error("several tool calls wait; name one (TAB completes): " + ", ".join(pending))
    return None


@BUILTINS.command("approve", "[TOOL_CALL]", needs_server=True)
async def approve(shell: ShellContext, args: str) -> None:
    """Approve the pending tool call (the only one, or the one named)."""
    target = _pending_target(shell, split_args(args), approved=True)
    if target is not None:
        await shell.decide_pending(target, ApprovalDecision.approve(decided_by="user"))


@BUILTINS.command("deny", "[TOOL_CALL] [REASON]", needs_server=True)
async def deny(shell: ShellContext, args: str) -> None:
    """Deny the pending tool call (the only one, or the one named), with a reason for Kai."""
    words = split_args(args)
    target = _pending_target(shell, words, approved=False)
    if target is not None:
        reason = " ".join(words) or DENIED
        await shell.decide_pending(target, ApprovalDecision.reject(reason, decided_by="user"))


@BUILTINS.command("vote", "up|down [MESSAGE]", needs_server=True)
async def vote(shell: ShellContext, args: str) -> None:
    """Vote on an answer (the last one unless MESSAGE is given)."""
    assert shell.client is not None
    words = split_args(args)
    if not words or words[0] not in ("up", "down"):
        shell.error("usage: /vote up|down [MESSAGE]")
        return
    message_id = words[1] if len(words) > 1 else None
    if message_id is None and shell.state.message_ids:
        message_id = shell.state.message_ids[-1]
    if message_id is None and shell.session is not None:
        message_id = shell.session.last_message_id
    if message_id is None:
        shell.error("no answer to vote on yet; name a MESSAGE id")
        return
    chat_id = shell.state.chat_id
    assert chat_id is not None
    await shell.client.vote(chat_id, message_id, words[0])
    shell.echo(f"voted {words[0]} on {message_id}")


# -- the server and the shell ---------------------------------------------------------


@BUILTINS.command("ping", needs_server=True)
async def ping(shell: ShellContext, args: str) -> None:
    """Check that the server answers (and how fast)."""
    took = await shell.check_server()
    if took is None:
        shell.error(f"the server does not answer ({shell.state.server_note})")
    else:
        shell.echo(f"pong from {shell.state.server_note} in {took * 1000:.0f} ms")


@BUILTINS.command("reconnect")
async def reconnect(shell: ShellContext, args: str) -> None:
    """Try to reach the server now (the shell also retries by itself while offline)."""
    if shell.client is None and not await shell.reconnect():
        shell.error(f"still offline ({shell.state.server_note})")
        return
    took = await shell.check_server()
    if took is None:
        shell.error(f"the server does not answer ({shell.state.server_note})")
    else:
        shell.echo(f"online: {shell.state.server_note}")


@BUILTINS.command("info", needs_server=True)
async def info(shell: ShellContext, args: str) -> None:
    """Show the server's name, version, uptime and MCP connections."""
    assert shell.client is not None
    data = await shell.client.info()
    shell.echo(f"server   {shell.client.base_url} ({shell.state.server_note})")
    shell.echo(f"app      {data.app_name} {data.app_version}")
    shell.echo(f"version  {data.server_version}")
    shell.echo(f"uptime   {data.uptime:.0f} s")
    mcp = data.connected_mcp
    items = mcp.items() if isinstance(mcp, dict) else enumerate(mcp)
    for key, value in items:
        name = value.get("name", key) if isinstance(value, dict) else value
        status = value.get("status", "") if isinstance(value, dict) else ""
        shell.echo(f"mcp      {name} {status}".rstrip())
    shell.echo(f"chat     {shell.state.chat_id}")
    if shell.log is not None:
        shell.echo(f"log      {shell.log.path}")


@BUILTINS.command("permissions", "[TOOL]")
async def permissions(shell: ShellContext, args: str) -> None:
    """Show the permission rules and, online, Kai's own tool settings; with TOOL, its verdict."""
    from kai_core.permissions import ACTIONS

    from ..commands.permissions import permission_rows

    local = shell.runtime.permissions
    tool = args.strip()
    if tool:
        verdict = local.evaluate(tool, {})
        where = f" ({verdict.scope} {verdict.source})" if verdict.rule else ""
        shell.echo(
            for_terminal(f"{tool}: {verdict.decision} by {verdict.rule or 'no rule'}{where}")
        )
        return
    rules = [rule for action in ACTIONS for rule in local.rules[action]]
    for rule in rules:
        shell.echo(f"{rule.action:<5} {rule.text:<40} {rule.scope} {rule.source}".rstrip())
    if not rules:
        shell.dim("no permission rules: every tool Kai asks about is asked about here")
    if shell.client is None:
        shell.dim("offline: Kai's own tool settings are not shown")
        return
    try:
        tools = (await shell.client.get_tools()).tools
        settings = await shell.client.get_user_settings()
    except KaiError as exc:
        shell.dim(f"Kai's own tool settings are not available: {exc}")
        return
    for row in permission_rows(tools, dict(settings.tool_permissions or {}), local):
        kind = "read-only" if row["read_only"] else "writes"
        shell.echo(
            for_terminal(
                f"{row['tool']:<24} {kind:<9} kai: {row['server'] or 'default':<12} "
                f"local: {row['local']}"
            )
        )
        if row["note"]:
            shell.dim(for_terminal(f"  {row['note']}"))


@BUILTINS.command("why")
async def why(shell: ShellContext, args: str) -> None:
    """Explain the last approval decision: the tool, the verdict and who made it."""
    from kai_core.audit import Attribution

    record = shell.session.last_decision if shell.session is not None else None
    if record is None:
        shell.dim("no tool call has been decided in this chat yet")
        return
    who = msgspec.convert(record["who"], Attribution).describe()
    shell.echo(for_terminal(f"{record['tool_name']}: {record['decision']} by {who}"))
    if record.get("reason"):
        shell.echo(for_terminal(f"  reason: {record['reason']}"))
    shell.dim(
        f"  call {record['tool_call_id']}, decided in {record['elapsed_ms']:.0f} ms; "
        f"input {record['input_digest']}"
    )


@BUILTINS.command("plugins")
async def plugins(shell: ShellContext, args: str) -> None:
    """List the plugins, their hooks, and the shell commands they add."""
    for row in shell.runtime.plugins.listing():
        hooks = ", ".join(row["hooks"]) or "no hooks"
        kind = "built-in" if row.get("builtin") else "plugin"
        shell.echo(f"{row['name']:<24} {kind:<8} {hooks}")
    extra = [c for c in shell.registry if c.source != "builtin"]
    for command in extra:
        shell.echo(f"  {command.synopsis}  ({command.source})")


@BUILTINS.command("help", "[COMMAND]", aliases=("?",))
async def help_(shell: ShellContext, args: str) -> None:
    """List the commands, or explain one."""
    if args.strip():
        shell.echo(shell.registry.help_text(args.strip()))
        return
    shell.echo(shell.registry.help_text())
    shell.dim(
        "Enter sends; Esc-Enter adds a line; Ctrl-C stops an answer or clears the line; "
        "Ctrl-R searches history; Ctrl-X Ctrl-E edits the line in $EDITOR; Ctrl-D quits. "
        "Start a message with // to send a line beginning with /."
    )
    from .emulator import WORDS_HELP, on_emulator

    if await on_emulator(shell.client):
        shell.dim(WORDS_HELP)


@BUILTINS.command("quit", aliases=("exit", "q"))
async def quit_(shell: ShellContext, args: str) -> None:
    """Leave the shell (Ctrl-D too)."""
    shell.quitting = True
