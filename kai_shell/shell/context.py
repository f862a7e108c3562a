"""What a slash command may use of the shell: :class:`ShellContext`.

The built-in commands (:mod:`.builtins`) are typed against this protocol,
not against :class:`kai_shell.repl.Shell`, so that the parts of the shell
never import the module that puts them together. ``Shell`` satisfies it;
``kai_shell.repl`` checks so for mypy, and a command that needs more of
the shell adds it here first.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    import trio

    from kai_core.client import KaiClient
    from kai_core.log import EventLog
    from kai_core.policy import ApprovalDecision
    from kai_core.render import Renderer
    from kai_core.session import Session

    from ..runtime import Runtime
    from .commands import CommandRegistry
    from .state import ShellState

__all__ = ["ShellContext"]


class ShellContext(Protocol):
    """The running shell as its commands see it (``handler(shell, args)``)."""

    quitting: bool
    """Set by ``/quit``: the shell ends after the command."""

    @property
    def runtime(self) -> Runtime:
        """Options, plugins, permissions."""

    @property
    def state(self) -> ShellState:
        """What the toolbar and completion show: chat, chats, pending calls, tokens."""

    @property
    def registry(self) -> CommandRegistry:
        """This shell's commands (built-ins and plugins')."""

    @property
    def client(self) -> KaiClient | None:
        """The client; None while offline."""

    @property
    def session(self) -> Session | None:
        """The current chat's session; None while offline."""

    @property
    def log(self) -> EventLog | None:
        """The event log; None with ``--no-log``."""

    @property
    def renderer(self) -> Renderer:
        """Draws answers (and replays)."""

    @property
    def out(self) -> TextIO:
        """Where answers and command output go."""

    @property
    def color(self) -> bool:
        """Colours are on."""

    # -- output ------------------------------------------------------------------------

    def styled(self, text: str, style: str | None = None, *, safe: bool = False) -> None:
        """Print a line in a style (``warn``, ``error``, ``dim``, ``user``)."""

    def echo(self, text: str = "", *, safe: bool = False) -> None:
        """Print a line of command output."""

    def dim(self, text: str) -> None:
        """Print a line of secondary information."""

    def warn(self, text: str) -> None:
        """Print a warning line."""

    def error(self, text: str) -> None:
        """Print an error as one line."""

    def interruptible(self, what: str) -> AbstractContextManager[trio.CancelScope]:
        """A cancel scope Ctrl-C cancels; the toolbar shows ``what`` meanwhile."""

    async def confirm(self, question: str) -> bool:
        """Ask a y/N question."""

    # -- chats and the server -------------------------------------------------------------

    def new_chat(self) -> str:
        """Start a new chat; its id."""

    def switch_chat(self, chat_id: str, title: str | None = None) -> None:
        """Make ``chat_id`` the current chat."""

    def resolve_chat(self, word: str) -> str | None:
        """A chat id from an id, a unique prefix or a unique title match."""

    def refresh_chats(self) -> None:
        """Refresh the cached chat list in the background."""

    async def send(self, text: str) -> None:
        """Send a message in the current chat and render the answer."""

    async def decide_pending(self, tool_call_id: str, decision: ApprovalDecision) -> None:
        """Answer a pending tool call and render what follows."""

    async def check_server(self) -> float | None:
        """Ping the server; the round trip in seconds, or None."""

    async def reconnect(self) -> bool:
        """Try to reach the server now; True when connected."""
