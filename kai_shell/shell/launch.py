"""The ``kai-shell`` command once its options are parsed: the early prompt, then the shell.

Kept apart from :mod:`kai_shell.repl` so that the first prompt
(:mod:`.early`) can show before ``repl`` brings in trio and the rest
(issue 16): this module imports the runtime's options and the early prompt
only, and no click (a plain command line is parsed without it, see
:mod:`.options`; click's command is :mod:`.command`).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from kai_core.exceptions import KaiError
from kai_core.sanitize import for_terminal

from ..runtime import Options, Runtime, UsageError, fill_from_environment
from .commands import CommandRegistry
from .early import open_early

__all__ = ["run"]


def run(chat_id: str | None, offline: bool, **options: Any) -> None:
    """The shell, with its options parsed: the early prompt, then the rest under trio."""
    fill_from_environment(options, "kai-shell")
    runtime = Runtime(Options(**options))
    try:
        early = open_early(runtime, chat_id=chat_id, offline=offline, load=_load_the_shell)
        if early is not None:
            if early.read_first_line() is None:
                early.join()
                return  # Ctrl-D at the first prompt
            early.loaded()  # the rest, imported while the user typed
        import trio

        from ..repl import run_shell_async

        try:
            trio.run(lambda: run_shell_async(runtime, chat_id, offline=offline, early=early))
        finally:
            if early is not None:  # EarlyPrompt.loaded's handler goes
                signal.signal(signal.SIGINT, signal.default_int_handler)
    except KeyboardInterrupt:  # only before the shell owns SIGINT
        sys.exit(130)
    except UsageError as exc:
        print(f"kai-shell: error: {for_terminal(str(exc))}", file=sys.stderr)
        sys.exit(exc.code)
    except KaiError as exc:
        print(f"kai-shell: error: {for_terminal(str(exc))}", file=sys.stderr)
        sys.exit(1)


def _load_the_shell() -> CommandRegistry:
    """The early prompt's loader (in its thread): import the shell and what it
    opens first, and return the built-in commands.

    Imports only: a module is safe to import from any thread, while the
    log's connection and the shell's objects are made later, under trio.
    """
    from kai_core import log as _log  # noqa: F401 - imported for the shell
    from kai_core import session as _session  # noqa: F401
    from kai_plugins import policies as _policies  # noqa: F401
    from kai_plugins.renderers import markdown as _markdown  # noqa: F401

    from .. import converse as _converse  # noqa: F401
    from .. import repl as _repl  # noqa: F401
    from .builtins import BUILTINS

    return BUILTINS
