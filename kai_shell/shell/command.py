"""``kai-shell`` as a click command: ``--help``, ``--version`` and every
command line that :func:`~.options.parse_plain` leaves to click.

Built from :data:`~.options.SHELL_OPTIONS`, so the two parsers know the same
options; the work is :func:`~.launch.run`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from .launch import run
from .options import SHELL_OPTIONS, ShellOption

__all__ = ["command"]


def _option(option: ShellOption) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if option.kind == "flag":
        return click.option(option.flag, is_flag=True, help=option.help)
    return click.option(option.flag, type=_type(option), help=option.help)


def _type(option: ShellOption) -> Any:
    """click's type of a value option (None: text)."""
    if option.kind == "choice":
        return click.Choice(option.choices)
    if option.kind == "file":
        return click.Path(dir_okay=False)
    return None


def _with_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(SHELL_OPTIONS):  # the innermost decorator is listed last
        fn = _option(option)(fn)
    return fn


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kai", prog_name="kai-shell", message="%(prog)s %(version)s")
@_with_options
def command(**params: Any) -> None:
    """kai-shell: chat with Kai; every chat recorded, searchable, replayable offline.

    \b
    Keys: Enter sends, Esc-Enter (Alt-Enter) adds a line, Ctrl-C stops an
    answer or clears the line, Ctrl-R searches history, Ctrl-X Ctrl-E edits
    in $EDITOR, Ctrl-D quits. Type /help in the shell for its commands.
    """
    run(**params)
