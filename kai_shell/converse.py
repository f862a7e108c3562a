"""Driving one exchange for the line-oriented front ends (``kai chat``, ``kai demo``).

The renderer comes guarded (:meth:`Runtime.guarded_renderer`): if the plugin
raises it is reported once and plain output takes over, so the answer still
reaches the user and the stream and the log go on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from kai_core._terminal import is_terminal
from kai_core.events import AbortEvent, ApprovalDecisionEvent, ErrorEvent
from kai_core.policy import AnswerInfo, ApprovalDecision, ApprovalRequest, VoteDecision
from kai_core.render import Renderer
from kai_core.sanitize import for_terminal

from .terminal_input import read_line

__all__ = [
    "INTERRUPTED_REASON",
    "NO_TERMINAL_HINT",
    "AnswerRenderer",
    "TerminalApproval",
    "ask_vote_on_terminal",
    "converse",
    "stdin_is_terminal",
    "vote_after_answer",
]


def stdin_is_terminal() -> bool:
    """True when someone can answer a question on stdin."""
    return is_terminal(sys.stdin)


class AnswerRenderer(Renderer):
    """Forwards to a renderer, with :meth:`end` acting once per answer.

    The session asks for a vote after the answer's last event but before
    :func:`converse` sees the stream end; :func:`vote_after_answer` ends the
    answer's output first (else a live markdown display would still be open,
    half drawn, under the question), and the later :meth:`end` is a no-op.
    """

    def __init__(self, inner: Renderer) -> None:
        super().__init__(inner.stream, color=inner.color)
        self.inner = inner
        self._open = False

    def begin(self, text: str | None) -> None:
        """Forward; an answer is open until :meth:`end`."""
        self._open = True
        self.inner.begin(text)

    def event(self, event: Any) -> None:
        """Forward."""
        self.inner.event(event)

    def notice(self, text: str) -> None:
        """Forward."""
        self.inner.notice(text)

    def end(self) -> None:
        """Forward, once per answer."""
        if self._open:
            self._open = False
            self.inner.end()


def vote_after_answer(
    renderer: AnswerRenderer,
) -> Callable[[AnswerInfo], Awaitable[VoteDecision | None]]:
    """The session's ``ask_vote``: finish showing the answer, then ask on the terminal."""

    async def ask(answer: AnswerInfo) -> VoteDecision | None:
        renderer.end()
        return await ask_vote_on_terminal(answer)

    return ask


NO_TERMINAL_HINT = (
    "no terminal to ask about {tool}, so it was rejected; "
    "approve it with --auto-approve or a --policy rule"
)
"""The CLI's hint (stderr) when a tool was rejected because nobody could be asked."""


async def converse(session: Any, text: str, renderer: Renderer) -> int:
    """Send ``text``, render the answer; return 0, or 10 if it ended with an error or abort."""
    status = 0
    renderer.begin(text)
    try:
        async for event in session.send(text):
            renderer.event(event)
            if isinstance(event, (ErrorEvent, AbortEvent)):
                status = 10
            elif isinstance(event, ApprovalDecisionEvent):
                if isinstance(session.ask, TerminalApproval) and session.ask.interrupted:
                    raise KeyboardInterrupt  # the rejection is logged: now stop
                if event.decided_by == "no-terminal":
                    tool = for_terminal(event.tool_name or event.tool_call_id)
                    click.echo(f"kai: {NO_TERMINAL_HINT.format(tool=tool)}", err=True)
    finally:
        renderer.end()
    return status


INTERRUPTED_REASON = "interrupted at the approval prompt (Ctrl-C)"
"""The logged reason when Ctrl-C answered the approval question."""


class TerminalApproval:
    """The CLI's ``ask``: y/N on the terminal, default No.

    Ctrl-C at the question rejects the tool (:data:`INTERRUPTED_REASON`,
    logged by the session like any decision) and sets :attr:`interrupted`;
    :func:`converse` then stops with ``KeyboardInterrupt`` (exit 130) once
    the rejection is in the log.
    """

    def __init__(self) -> None:
        self.interrupted = False

    async def __call__(self, request: ApprovalRequest) -> ApprovalDecision | None:
        """Show the tool and its input (sanitised: the server chose both), then ask."""
        try:
            pretty = json.dumps(request.input, indent=2, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            pretty = repr(request.input)
        click.echo(
            f"\nTool {for_terminal(request.tool_name)} needs your approval. Input:", err=True
        )
        click.echo(for_terminal(pretty, multiline=True), err=True)
        while True:
            try:
                reply = await read_line("Approve this tool call? [y/N]: ", err=True)
            except EOFError:
                reply = ""
            except KeyboardInterrupt:
                click.echo(err=True)
                self.interrupted = True
                return ApprovalDecision.reject(INTERRUPTED_REASON, decided_by="user")
            reply = reply.strip().lower()
            if reply in ("y", "yes"):
                return ApprovalDecision.approve(decided_by="user")
            if reply in ("", "n", "no"):
                return ApprovalDecision.reject("denied by the user", decided_by="user")
            click.echo("Error: invalid input", err=True)


async def ask_vote_on_terminal(answer: AnswerInfo) -> VoteDecision | None:
    """Ask for a vote after an answer: u(p), d(own) or Enter to skip (Ctrl-D skips too)."""
    try:
        reply = await read_line("Vote on this answer? [u/d/Enter to skip]: ", err=True)
    except EOFError:
        return None
    reply = reply.strip().lower()
    if reply in ("u", "up", "+"):
        return VoteDecision.up()
    if reply in ("d", "down", "-"):
        return VoteDecision.down()
    return None
