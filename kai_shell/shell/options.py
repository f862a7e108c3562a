"""``kai-shell``'s options, declared once: click's command is built from them
(:mod:`.command`), and a plain command line is parsed without click.

Why the second parser: importing click is about a tenth of the time to the
shell's first prompt (issue 16), and most starts are ``kai-shell``,
``kai-shell --offline`` or a token and a service. :func:`parse_plain` takes
only such command lines: flags, and values given as ``--name value`` or
``--name=value``. Anything else (``--help``, an unknown or misspelt option,
a value that is missing or looks like an option, a choice not offered, a
file option naming a folder or a file it cannot read) returns None, and
click parses it, errors and help included.
``tests/test_shell_options.py`` holds the two to the same result.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any, Final, Literal, NamedTuple

from .theme import THEMES

__all__ = ["SHELL_OPTIONS", "ShellOption", "parse_plain"]


class ShellOption(NamedTuple):
    """One option of ``kai-shell``.

    ``kind``: ``"flag"`` (on when given), ``"value"`` (any text),
    ``"choice"`` (one of ``choices``) or ``"file"`` (a path, as given, that
    is not a folder and, if it exists, can be read: click's ``Path(dir_okay=False)``).
    """

    name: str
    """The parameter's name (``base_url``)."""
    flag: str
    """As typed (``--base-url``)."""
    kind: Literal["flag", "value", "choice", "file"]
    help: str
    choices: tuple[str, ...] = ()


SHELL_OPTIONS: Final[tuple[ShellOption, ...]] = (
    ShellOption("token", "--token", "value", "Keboola Storage API token (or STORAGE_API_TOKEN)."),
    ShellOption("url", "--url", "value", "Keboola Storage API URL (or STORAGE_API_URL)."),
    ShellOption(
        "base_url", "--base-url", "value", "Kai API base URL; skips discovery (or KAI_BASE_URL)."
    ),
    ShellOption(
        "service",
        "--service",
        "choice",
        "Backend to discover (or KAI_SERVICE): agent (current) or assistant (legacy).",
        ("agent", "assistant"),
    ),
    ShellOption("db", "--db", "file", "Event log file (or KAI_DB)."),
    ShellOption("no_log", "--no-log", "flag", "Do not record this session in the event log."),
    ShellOption(
        "renderer",
        "--renderer",
        "value",
        "How answers are shown: markdown, plain, json, or a plugin's.",
    ),
    ShellOption("policy", "--policy", "file", "Approval rules file (TOML)."),
    ShellOption("auto_approve", "--auto-approve", "flag", "Approve tool calls no policy decided."),
    ShellOption("vote", "--vote", "flag", "Ask for a vote after each answer."),
    ShellOption("chat_id", "--chat-id", "value", "Continue this chat (its id, or a prefix of it)."),
    ShellOption("offline", "--offline", "flag", "Do not connect: only recorded chats."),
    ShellOption(
        "theme",
        "--theme",
        "choice",
        "Colours for a dark or light terminal (or KAI_THEME; default: from COLORFGBG, else dark).",
        THEMES,
    ),
    ShellOption("debug", "--debug", "flag", "Show tracebacks for errors."),
)
"""Every option, in the order ``--help`` lists them (``--version`` and ``--help`` aside)."""

_BY_FLAG: Final = {option.flag: option for option in SHELL_OPTIONS}


def parse_plain(argv: Sequence[str]) -> dict[str, Any] | None:
    """The parameters click would give for ``argv``; None unless ``argv`` is plain (see the module).

    A value given twice keeps the last, as click does.
    """
    params: dict[str, Any] = {o.name: False if o.kind == "flag" else None for o in SHELL_OPTIONS}
    args = iter(argv)
    for arg in args:
        flag, eq, value = arg.partition("=")
        option = _BY_FLAG.get(flag)
        if option is None:
            return None
        if option.kind == "flag":
            if eq:
                return None
            params[option.name] = True
            continue
        if not eq:
            following = next(args, None)
            if following is None or following.startswith("-"):
                return None
            value = following
        if option.kind == "choice" and value not in option.choices:
            return None
        if option.kind == "file" and not _plain_file(value):
            return None
        params[option.name] = value
    return params


def _plain_file(path: str) -> bool:
    """Whether click's ``Path(dir_okay=False)`` takes ``path`` as it is: it does
    not exist, or it is no folder and can be read."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return True
    return not stat.S_ISDIR(mode) and os.access(path, os.R_OK)
