"""Building the main prompt: history file, auto-suggest, completion, keys, toolbar.

The history lives in ``platformdirs.user_state_path("kai")/shell_history``
(``$KAI_SHELL_HISTORY`` overrides it); it is created readable by its owner
only, since people paste things into prompts.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.styles import Style

from .commands import CommandRegistry
from .completer import ShellCompleter
from .keys import shell_key_bindings
from .state import ShellState
from .theme import PROMPT_STYLES, Theme
from .toolbar import toolbar

__all__ = ["ENV_HISTORY", "build_prompt", "history_path", "open_history", "prompt_message"]

ENV_HISTORY = "KAI_SHELL_HISTORY"


def history_path() -> Path:
    """Where the shell keeps what was typed."""
    env = os.environ.get(ENV_HISTORY)
    if env:
        return Path(env).expanduser()
    return platformdirs.user_state_path("kai", appauthor=False) / "shell_history"


def open_history(path: Path | None = None) -> History:
    """A file history at ``path`` (mode 0600); in memory when the file cannot be made."""
    path = path or history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)  # an older file may have been made with looser rights
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def prompt_message(state: ShellState) -> StyleAndTextTuples:
    """``kai> ``; ``kai (offline)> `` or ``kai (connecting)> ``; ``kai ⏸> `` with a pending approval."""
    parts: StyleAndTextTuples = [("class:prompt", "kai")]
    if not state.online:
        parts.append(("class:prompt.offline", f" ({state.server})"))
    if state.pending:
        parts.append(("class:prompt.pending", " ⏸"))
    parts.append(("class:prompt", "> "))
    return parts


def _continuation(width: int, line_number: int, wrap_count: int) -> StyleAndTextTuples:
    return [("class:prompt.continuation", "... ".rjust(width))]


def build_prompt(
    registry: CommandRegistry,
    state: ShellState,
    *,
    history: History | None = None,
    input: Input | None = None,
    output: Output | None = None,
    theme: Theme = "dark",
) -> PromptSession[str]:
    """The main prompt session (its ``prompt()`` blocks: call it from a worker thread)."""
    style = Style.from_dict(PROMPT_STYLES[theme])
    completer = ShellCompleter(registry, state)
    return PromptSession(
        message=lambda: prompt_message(state),
        history=history if history is not None else open_history(),
        auto_suggest=AutoSuggestFromHistory(),
        completer=completer,
        complete_while_typing=True,
        key_bindings=shell_key_bindings(completer),
        bottom_toolbar=lambda: toolbar(state),
        prompt_continuation=_continuation,
        enable_open_in_editor=True,
        enable_history_search=False,  # Ctrl-R search instead: up-arrow walks all history
        style=style,
        input=input,
        output=output,
    )
