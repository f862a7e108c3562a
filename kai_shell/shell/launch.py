"""The ``kai-shell`` command: its options, then the early prompt and the shell.

Kept apart from :mod:`kai_shell.repl` so that the first prompt
(:mod:`.early`) can show before ``repl`` brings in trio and the rest
(issue 16): this module imports click, the runtime's options and the early
prompt only.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from kai_core.exceptions import KaiError
from kai_core.sanitize import for_terminal

from ..runtime import Options, Runtime, UsageError, fill_from_environment
from .commands import CommandRegistry
from .early import open_early
from .theme import THEMES

__all__ = ["main"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kai", prog_name="kai-shell", message="%(prog)s %(version)s")
@click.option("--token", help="Keboola Storage API token (or STORAGE_API_TOKEN).")
@click.option("--url", help="Keboola Storage API URL (or STORAGE_API_URL).")
@click.option("--base-url", help="Kai API base URL; skips discovery (or KAI_BASE_URL).")
@click.option(
    "--service",
    type=click.Choice(["agent", "assistant"]),
    help="Backend to discover (or KAI_SERVICE): agent (current) or assistant (legacy).",
)
@click.option("--db", type=click.Path(dir_okay=False), help="Event log file (or KAI_DB).")
@click.option("--no-log", is_flag=True, help="Do not record this session in the event log.")
@click.option("--renderer", help="How answers are shown: markdown, plain, json, or a plugin's.")
@click.option("--policy", type=click.Path(dir_okay=False), help="Approval rules file (TOML).")
@click.option("--auto-approve", is_flag=True, help="Approve tool calls no policy decided.")
@click.option("--vote", is_flag=True, help="Ask for a vote after each answer.")
@click.option("--chat-id", help="Continue this chat (its id, or a prefix of it).")
@click.option("--offline", is_flag=True, help="Do not connect: only recorded chats.")
@click.option(
    "--theme",
    type=click.Choice(THEMES),
    help="Colours for a dark or light terminal (or KAI_THEME; default: from COLORFGBG, else dark).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(chat_id: str | None, offline: bool, **options: Any) -> None:
    """kai-shell: chat with Kai; every chat recorded, searchable, replayable offline.

    \b
    Keys: Enter sends, Esc-Enter (Alt-Enter) adds a line, Ctrl-C stops an
    answer or clears the line, Ctrl-R searches history, Ctrl-X Ctrl-E edits
    in $EDITOR, Ctrl-D quits. Type /help in the shell for its commands.
    """

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
        click.echo(f"kai-shell: error: {for_terminal(str(exc))}", err=True)
        sys.exit(exc.code)
    except KaiError as exc:
        click.echo(f"kai-shell: error: {for_terminal(str(exc))}", err=True)
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
