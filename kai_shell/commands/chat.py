"""``kai chat``: one message with ``-m``, a message on stdin, or an interactive loop."""

from __future__ import annotations

import sys

import click

from ..cli import runtime_of
from ..converse import (
    AnswerRenderer,
    TerminalApproval,
    converse,
    stdin_is_terminal,
    vote_after_answer,
)
from ..errors import EXIT_CODES, fail, run_trio
from ..ids import ChatId, most_recent, resolve
from ..runtime import Runtime
from ..terminal_input import read_line


@click.command()
@click.option("-m", "--message", help="Send a single message instead of interactive mode.")
@click.option(
    "--chat-id",
    type=ChatId,
    help="Continue an existing chat: its id or the first 4+ characters of it (default: new chat).",
)
@click.option(
    "-c", "--continue", "continue_", is_flag=True, help="Continue the most recent chat of the log."
)
@click.option("--auto-approve", is_flag=True, help="Approve tool calls no policy decided.")
@click.option("--json-output", is_flag=True, help="One JSON object per event per line.")
@click.option("--vote", "vote_prompt", is_flag=True, help="Ask for a vote after each answer.")
@click.pass_context
def chat(
    ctx: click.Context,
    message: str | None,
    chat_id: str | None,
    continue_: bool,
    auto_approve: bool,
    json_output: bool,
    vote_prompt: bool,
) -> None:
    """Chat with the Keboola AI Assistant.

    Without -m: reads the message from stdin when stdin is not a terminal,
    else starts an interactive loop (type 'exit' to quit). With -m and text
    piped in, the message is sent followed by that text, as in
    `cat notes.txt | kai chat -m "summarize this"`. Tools that need
    approval are decided by policies (--policy, --auto-approve), else you are
    asked; with no terminal to ask, they are rejected. Ctrl-C at the approval
    question rejects the tool (the rejection is logged) and exits 130.
    """
    runtime = runtime_of(ctx)
    if continue_ and chat_id:
        raise click.UsageError("give --chat-id or --continue, not both")
    runtime.options.auto_approve = auto_approve or runtime.options.auto_approve
    if json_output:
        runtime.options.renderer = "json"
    interactive = stdin_is_terminal()
    if message is None and not interactive:
        message = sys.stdin.read() if sys.stdin is not None else ""
        if not message.strip():
            fail("no message: pass -m TEXT or pipe the message on stdin", EXIT_CODES["usage"])
    elif message is not None and not interactive:
        piped = read_piped_stdin()
        if piped.strip():
            message = f"{message}\n\n{piped}"
    if message is not None and not message.strip():
        fail("the message is empty", EXIT_CODES["usage"])
    _ = runtime.plugins  # a bad policy file stops us before anything is sent
    status = run_trio(
        ctx, _chat, runtime, message, chat_id, continue_, json_output, interactive, vote_prompt
    )
    sys.exit(status or 0)


def read_piped_stdin() -> str:
    """What was piped or redirected into stdin; "" when stdin is a terminal,
    /dev/null, or anything else that is not a pipe or a file (nothing to wait for)."""
    import os
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, ValueError, OSError):
        return ""
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        return ""
    return sys.stdin.read()


async def _chat(
    runtime: Runtime,
    message: str | None,
    chat_id: str | None,
    continue_latest: bool,
    json_output: bool,
    interactive: bool,
    vote_prompt: bool,
) -> int:

    renderer = AnswerRenderer(runtime.guarded_renderer(sys.stdout))
    if continue_latest:
        chat_id = await most_recent(runtime)
    async with runtime.client() as client:
        if chat_id is not None:
            chat_id = await resolve(runtime, chat_id, client)
        session = runtime.session(
            client,
            chat_id=chat_id,
            ask=TerminalApproval() if interactive else None,
            ask_vote=vote_after_answer(renderer) if (vote_prompt and interactive) else None,
        )
        if not json_output:
            click.echo(f"Chat ID: {session.chat_id}")
        if message is not None:
            return await converse(session, message, renderer)
        click.echo("Interactive chat mode. Type 'exit' to quit.")
        status = 0
        while True:
            try:
                text = await read_line("You: ")
            except EOFError:
                click.echo()
                break
            if text.strip().lower() in ("exit", "quit", "q"):
                break
            if text.strip():
                status = await converse(session, text, renderer)
                click.echo()
        click.echo("Chat ended.")
        return status
