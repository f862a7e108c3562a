"""Asking the user about a tool call, inline, while the answer waits.

The shell shows the tool's name and its input as pretty JSON, then asks
``y/N``. At that prompt the user may also type ``/approve [TOOL_CALL]`` or
``/deny [TOOL_CALL] [reason]`` (with completion of the pending ids), or
``n some reason``: a decision about *another* pending call of the same
answer is remembered and used when its turn comes. Enter alone, like any
``[y/N]`` prompt, means no.

:func:`parse_reply` is the pure part (what a typed line means);
:class:`ApprovalPrompt` is the blocking prompt, run in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prompt_toolkit import PromptSession
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output

from kai_core.sanitize import for_terminal

from .commands import CommandRegistry, split_args
from .completer import ShellCompleter
from .keys import completion_key_bindings
from .state import ShellState

__all__ = ["APPROVAL_HELP", "ApprovalPrompt", "ApprovalReply", "describe_request", "parse_reply"]

APPROVAL_HELP = (
    "y = run the tool, n (or Enter) = do not run it; 'n REASON' tells Kai why.\n"
    "/approve TOOL_CALL, /deny TOOL_CALL [REASON] decide another pending call of this answer.\n"
    "Ctrl-C stops the whole answer (the call stays pending: /approve or /deny it later)."
)

DENIED = "denied by the user"


@dataclass(frozen=True)
class ApprovalReply:
    """What a line typed at the approval prompt means.

    :param kind: ``decide`` (this call), ``other`` (another pending call,
        ``tool_call_id``), ``help``, or ``invalid`` (``message`` says why).
    """

    kind: Literal["decide", "other", "help", "invalid"]
    approved: bool = False
    reason: str | None = None
    tool_call_id: str | None = None
    message: str = ""


def parse_reply(text: str, current: str, pending: Sequence[str] = ()) -> ApprovalReply:
    """Interpret ``text`` typed while the tool call ``current`` waits.

    :param current: the tool call id being asked about.
    :param pending: every pending tool call id (``current`` included or not).
    """
    line = text.strip()
    word, _, rest = line.partition(" ")
    lowered = word.lower()
    if lowered in ("", "n", "no"):
        return ApprovalReply("decide", approved=False, reason=rest.strip() or DENIED)
    if lowered in ("y", "yes"):
        return ApprovalReply("decide", approved=True)
    if lowered in ("?", "h", "help", "/help"):
        return ApprovalReply("help")
    if lowered in ("/approve", "/deny"):
        approved = lowered == "/approve"
        args = split_args(rest)
        target = current
        if args and (args[0] == current or args[0] in pending):
            target = args.pop(0)
        elif args and approved:
            return ApprovalReply("invalid", message=f"no pending tool call {args[0]!r}")
        reason = " ".join(args) or (None if approved else DENIED)
        kind: Literal["decide", "other"] = "decide" if target == current else "other"
        return ApprovalReply(kind, approved=approved, reason=reason, tool_call_id=target)
    return ApprovalReply("invalid", message="answer y or n (? for help)")


def describe_request(tool_name: str | None, tool_call_id: str, tool_input: Any) -> str:
    """The block shown before the question: the tool and its input as pretty JSON."""
    try:
        pretty = json.dumps(tool_input, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        pretty = repr(tool_input)
    # The server chose every piece of this: shown, never interpreted.
    head = for_terminal(f"Tool {tool_name or '?'} wants to run (call {tool_call_id}) with input:")
    return f"{head}\n{for_terminal(pretty, multiline=True)}"


class ApprovalPrompt:
    """The ``y/N`` prompt (blocking: call :meth:`read` from a worker thread).

    :param input: prompt-toolkit input (None: the terminal); tests pass a pipe.
    :param output: prompt-toolkit output (None: the terminal).
    """

    def __init__(
        self,
        registry: CommandRegistry,
        state: ShellState,
        *,
        input: Input | None = None,
        output: Output | None = None,
    ) -> None:
        completer = ShellCompleter(registry, state, only=("approve", "deny", "help"))
        self._session: PromptSession[str] = PromptSession(
            completer=completer,
            complete_while_typing=True,
            key_bindings=completion_key_bindings(completer),
            input=input,
            output=output,
        )

    def read(self, tool_name: str | None) -> str:
        """Ask once; the typed line. Raises KeyboardInterrupt (Ctrl-C) or EOFError (Ctrl-D)."""
        return self._session.prompt(f"Approve {for_terminal(tool_name or 'this tool')}? [y/N] ")

    def ask(self, question: str) -> str:
        """Ask any short question (a vote, a confirmation); Ctrl-C and Ctrl-D answer ``""``."""
        try:
            return self._session.prompt(question)
        except (KeyboardInterrupt, EOFError):
            return ""
