"""The first prompt of ``kai-shell``, up before trio and the rest are loaded.

Why: on a terminal, the time to a prompt is what the user feels, and
prompt-toolkit alone is about half of what the shell imports; trio, the
log, the plugins and the renderers are the other half (issue 16). So
:func:`open_early` shows the real prompt (the same ``PromptSession`` the
shell goes on with: same history, keys, toolbar) as soon as prompt-toolkit
is in, and a thread imports the rest behind it while the user types.

What does not change:

* anything that would stop the shell (a broken policy file, bad telemetry
  settings: exit 3) is checked before the prompt shows
  (:meth:`~kai_shell.runtime.Runtime.check_config`), never after;
* typed keys are prompt-toolkit's from the first render on, so none are
  lost; Ctrl-C on an empty line prints the quit hint and Ctrl-D quits, as at
  every later prompt;
* the greeting comes before the prompt, as before. Only what the shell
  reports while it opens the log and loads plugins (a log it cannot open,
  a plugin's bad command) now follows the first line instead of preceding
  the first prompt.

The first line is handed to :class:`~kai_shell.repl.Shell`, which runs it
before prompting again. Not on a terminal (tests with pipes, scripts) or
with ``--chat-id`` (resolving it reads the log), the shell starts as it
always did.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from kai_core._terminal import is_terminal
from kai_core.sanitize import for_terminal

from .commands import CommandRegistry
from .state import ShellState
from .theme import LINE_COLORS, Theme, choose_theme

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession

    from ..runtime import Runtime

__all__ = ["EarlyPrompt", "greet", "new_chat_id", "open_early", "wants_color"]

_RESET = "\x1b[0m"


@dataclass
class EarlyPrompt:
    """The shell's beginning, made before trio: what :class:`~kai_shell.repl.Shell` takes over.

    :param state: the shell's state (the prompt and toolbar read it).
    :param registry: the command registry the completer reads; the loader
        thread fills it with the built-ins, the shell adds its plugins'.
    :param prompt: the main prompt session.
    :param out: where the greeting went.
    :param theme: the colour theme.
    :param color: whether lines are coloured.
    :param load: see below (:func:`open_early`'s caller gives it: it imports the
        shell, which this module must not).
    """

    state: ShellState
    registry: CommandRegistry
    prompt: PromptSession[str]
    out: TextIO
    theme: Theme
    color: bool
    load: Callable[[], CommandRegistry] = CommandRegistry
    """Run in the loader thread: import what the shell needs, return the built-in commands."""
    first_line: str | None = None
    """What was typed at the first prompt; None: Ctrl-D (quit)."""
    interrupted: bool = False
    """Ctrl-C came after the first line, before the shell owned SIGINT: the line is not run."""
    _loader: threading.Thread | None = field(default=None, repr=False)
    _load_error: BaseException | None = field(default=None, repr=False)

    def styled(self, text: str, style: str | None = None) -> None:
        """A line as :meth:`kai_shell.repl.Shell.styled` prints it (made safe for the terminal)."""
        text = for_terminal(text, multiline=True)
        if style and self.color:
            text = f"{LINE_COLORS[self.theme][style]}{text}{_RESET}"
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        """A warning line (the runtime's reports go here until the shell takes over)."""
        self.styled(text, "warn")

    def read_first_line(self) -> str | None:
        """Prompt until a line is entered (Ctrl-C: the quit hint, again); None at Ctrl-D.

        The loader thread starts after the prompt's first render, so that
        the prompt is not slowed down by it.
        """
        from .keys import QUIT_HINT

        app = self.prompt.app

        def start_loading(_: object) -> None:
            app.after_render -= start_loading
            self._start_loader()

        app.after_render += start_loading
        try:
            while True:
                try:
                    self.first_line = self.prompt.prompt()
                    return self.first_line
                except KeyboardInterrupt:  # Ctrl-C on an empty line (see keys.py)
                    self.styled(QUIT_HINT, "dim")
                except EOFError:
                    self.first_line = None
                    return None
        finally:
            if self._loader is None:  # the prompt never rendered (it failed)
                app.after_render -= start_loading

    def _start_loader(self) -> None:
        self._loader = threading.Thread(target=self._load, name="kai-shell-loader", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        try:
            builtins = self.load()
            # One assignment: the completer (in the prompt's thread) sees the
            # old commands or the new ones, never a registry half filled.
            self.registry.take(builtins)
        except BaseException as exc:  # handed to the main thread: see loaded()
            self._load_error = exc

    def loaded(self) -> None:
        """Wait for the loader thread; raise what it raised.

        From here until the shell holds SIGINT itself, Ctrl-C only marks the
        first line as stopped (:attr:`interrupted`): had the shell been
        loaded, it would have stopped that line's answer, not ended the
        shell. (trio leaves a handler that is not Python's default alone.)
        """
        signal.signal(signal.SIGINT, self._interrupt)
        if self._loader is None:
            self._start_loader()
        assert self._loader is not None
        self._loader.join()
        if self._load_error is not None:
            raise self._load_error

    def join(self) -> None:
        """Wait for the loader thread, if it started (its errors are not wanted here).

        Quitting at the first prompt calls this, so that no import is still
        running in a daemon thread while the interpreter shuts down.
        """
        if self._loader is not None:
            self._loader.join()

    def _interrupt(self, signum: int, frame: object) -> None:
        self.interrupted = True


def new_chat_id() -> str:
    """A new chat id (a UUID, as the server requires)."""
    import uuid

    return str(uuid.uuid4())


def wants_color(stream: TextIO) -> bool:
    """Colours on a terminal, unless ``NO_COLOR`` is set."""
    import os

    return is_terminal(stream) and not os.environ.get("NO_COLOR")


def greet(state: ShellState, welcome: str | None, styled: Callable[[str, str | None], Any]) -> None:
    """The lines before the first prompt: the chat, the keys, and why offline if so."""
    title = state.title_of(state.chat_id or "")
    where = f"chat {state.chat_id}" + (f" ({title})" if title else " (new)")
    styled(f"kai-shell: {where}. Type a message; /help for commands; Ctrl-D to quit.", "dim")
    if welcome:
        styled(welcome, None)
    if state.server == "offline":
        styled(
            f"offline ({state.server_note}): recorded chats work: /chats /search /replay", "warn"
        )


def open_early(
    runtime: Runtime,
    *,
    chat_id: str | None,
    offline: bool,
    load: Callable[[], CommandRegistry],
) -> EarlyPrompt | None:
    """Check the configuration, greet, and make the first prompt; None when not on a terminal.

    :param load: imports the rest of the shell (in a thread, behind the
        prompt) and returns the built-in commands.

    :raises UsageError: a broken policy file or telemetry setting (exit 3),
        before anything is shown.
    """
    out = sys.stdout
    if chat_id is not None or not (is_terminal(out) and sys.stdin.isatty()):
        return None
    from .prompt import build_prompt

    theme = choose_theme(runtime.options.theme)
    state = ShellState(chat_id=new_chat_id())
    registry = CommandRegistry()
    early = EarlyPrompt(
        state=state,
        registry=registry,
        prompt=build_prompt(registry, state, theme=theme),
        out=out,
        theme=theme,
        color=wants_color(out),
        load=load,
    )
    if runtime.report is None:
        runtime.report = early.warn  # the policy's warnings print as the shell's
    runtime.check_config()
    if offline:
        state.server, state.server_note = "offline", "--offline"
    elif not runtime.options.resolved_token():
        state.server, state.server_note = "offline", "no Storage API token"
    else:
        state.server = "connecting"
    greet(state, None, early.styled)
    return early
