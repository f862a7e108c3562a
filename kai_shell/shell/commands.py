"""The slash-command registry: one table that dispatches, documents and completes.

Every command of ``kai-shell`` -- built-in or from a plugin's
``kai_shell_commands`` hook -- is a :class:`ShellCommand`. Its ``usage``
string (``"CHAT [FILE]"``) is the single description of its arguments: the
registry parses it into :class:`Arg` objects, ``/help`` prints it, and the
completer reads each argument's kind from it (``CHAT`` completes chat ids,
``FILE`` paths, ``up|down`` the words, ...). So a command's help and its
completion can never disagree.

A plugin adds a command like this::

    from kai_core import hookimpl
    from kai_shell.shell import ShellCommand

    async def tables(shell, args):
        shell.echo("...")

    @hookimpl
    def kai_shell_commands():
        return [ShellCommand("tables", tables, help="List my tables.", usage="[BUCKET]")]
"""

from __future__ import annotations

import difflib
import inspect
import shlex
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ARG_KINDS",
    "Arg",
    "CommandRegistry",
    "Handler",
    "ShellCommand",
    "parse_usage",
    "split_args",
]

Handler = Callable[[Any, str], "Awaitable[None] | None"]
"""``handler(shell, args)``: ``shell`` is the running shell (what a command may use
of it: :class:`kai_shell.shell.context.ShellContext`), ``args`` the text after the
command name. May be a plain or an async function."""

# Argument names in usage strings and the kind of value they complete.
ARG_KINDS: dict[str, str] = {
    "CHAT": "chat",
    "FILE": "path",
    "PATH": "path",
    "TOOL_CALL": "tool_call",
    "TOOL": "tool",
    "MESSAGE": "message",
    "COMMAND": "command",
    "QUERY": "tool",  # search words: tool names are what is worth completing
}


@dataclass(frozen=True)
class Arg:
    """One argument of a command, parsed from its usage string.

    :param name: as written in the usage (``CHAT``, ``up|down``).
    :param kind: what completes it: ``chat``, ``path``, ``tool_call``, ``tool``,
        ``message``, ``command``, ``choice`` or ``text`` (nothing).
    :param optional: written in brackets.
    :param choices: the words of a ``a|b`` argument.
    :param rest: the last argument takes the rest of the line (``QUERY...``
        or any ``text`` argument in last place).
    """

    name: str
    kind: str = "text"
    optional: bool = False
    choices: tuple[str, ...] = ()
    rest: bool = False


def parse_usage(usage: str) -> tuple[Arg, ...]:
    """``"CHAT [FILE]"`` → the arguments it describes."""
    words = usage.split()
    args = []
    for index, word in enumerate(words):
        optional = word.startswith("[") and word.endswith("]")
        name = word.strip("[]")
        rest = name.endswith("...")
        name = name.removesuffix("...")
        if "|" in name:
            args.append(Arg(name, "choice", optional, tuple(name.split("|"))))
            continue
        kind = ARG_KINDS.get(name, "text")
        last = index == len(words) - 1
        args.append(Arg(name, kind, optional, rest=rest or (last and kind == "text")))
    return tuple(args)


def split_args(text: str) -> list[str]:
    """Split arguments like a shell does (quotes group words); never raises."""
    try:
        return shlex.split(text)
    except ValueError:  # an unclosed quote while typing
        return text.split()


@dataclass
class ShellCommand:
    """A slash command of ``kai-shell``.

    :param name: the command without its slash (``open``).
    :param handler: ``handler(shell, args)``, plain or async; ``args`` is the
        rest of the line. Server errors it raises are shown as one line.
    :param help: one line for ``/help``.
    :param usage: its arguments, e.g. ``"CHAT [FILE]"``: names in capitals
        (``CHAT``, ``FILE``, ``TOOL_CALL``, ``TOOL``, ``MESSAGE``, ``COMMAND``
        complete; others are free text), ``[...]`` optional, ``a|b`` a choice.
    :param aliases: other names (``exit`` for ``quit``).
    :param needs_server: say so, instead of running it, while offline.
    :param source: who offers it (``builtin`` or the plugin's name).
    """

    name: str
    handler: Handler
    help: str = ""
    usage: str = ""
    aliases: tuple[str, ...] = ()
    needs_server: bool = False
    source: str = "builtin"
    args: tuple[Arg, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        self.name = self.name.lstrip("/")
        self.args = parse_usage(self.usage)
        if not self.help:
            doc = inspect.getdoc(self.handler) or ""
            self.help = doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def synopsis(self) -> str:
        """``/open CHAT``."""
        return f"/{self.name} {self.usage}".rstrip()

    async def run(self, shell: Any, args: str) -> None:
        """Call the handler, awaiting it when it is async."""
        result = self.handler(shell, args)
        if inspect.isawaitable(result):
            await result


class CommandRegistry:
    """The commands of one shell, by name and alias.

    ``registry.command(...)`` is a decorator that adds an async function as a
    command, its docstring's first line as the help.
    """

    def __init__(self) -> None:
        self._commands: dict[str, ShellCommand] = {}
        self._aliases: dict[str, str] = {}

    def command(
        self,
        name: str,
        usage: str = "",
        *,
        aliases: tuple[str, ...] = (),
        needs_server: bool = False,
        help: str = "",
    ) -> Callable[[Handler], Handler]:
        """Decorator: register the function as ``/name``."""

        def register(handler: Handler) -> Handler:
            self.add(
                ShellCommand(
                    name,
                    handler,
                    help=help,
                    usage=usage,
                    aliases=aliases,
                    needs_server=needs_server,
                )
            )
            return handler

        return register

    def add(self, command: ShellCommand) -> None:
        """Add a command; a name already taken raises ValueError (built-ins cannot be replaced)."""
        for name in (command.name, *command.aliases):
            if name in self._commands or name in self._aliases:
                raise ValueError(f"shell command /{name} already exists")
        self._commands[command.name] = command
        for alias in command.aliases:
            self._aliases[alias] = command.name

    def copy(self) -> CommandRegistry:
        """A registry with the same commands (a shell adds its plugins' to its own copy)."""
        other = CommandRegistry()
        other._commands = dict(self._commands)
        other._aliases = dict(self._aliases)
        return other

    def take(self, other: CommandRegistry) -> None:
        """Have ``other``'s commands instead of these (the early prompt's registry
        gets the built-ins so). Each table is replaced in one assignment, so a
        completer reading it from another thread never sees one half filled."""
        self._commands = dict(other._commands)
        self._aliases = dict(other._aliases)

    def get(self, name: str) -> ShellCommand | None:
        """The command called ``name`` (with or without its slash, or an alias)."""
        name = name.lstrip("/")
        name = self._aliases.get(name, name)
        return self._commands.get(name)

    def __iter__(self) -> Iterator[ShellCommand]:
        return iter(sorted(self._commands.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        return len(self._commands)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def names(self) -> list[str]:
        """Every name and alias, sorted."""
        return sorted([*self._commands, *self._aliases])

    def parse(self, line: str) -> tuple[ShellCommand | None, str, str]:
        """``"/open abc"`` → ``(command or None, "open", "abc")``."""
        head, _, rest = line.strip().partition(" ")
        name = head.lstrip("/")
        return self.get(name), name, rest.strip()

    def suggest(self, name: str) -> str | None:
        """The closest command name, for ``unknown command /opn (did you mean /open?)``."""
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
        return close[0] if close else None

    def help_text(self, name: str | None = None) -> str:
        """``/help``: every command with its usage and help; or one command in detail."""
        if name:
            command = self.get(name)
            if command is None:
                return f"no command /{name.lstrip('/')}"
            lines = [command.synopsis, f"  {command.help}"]
            if command.aliases:
                lines.append("  aliases: " + ", ".join(f"/{a}" for a in command.aliases))
            if command.needs_server:
                lines.append("  needs the server (not available offline)")
            if command.source != "builtin":
                lines.append(f"  from plugin {command.source}")
            return "\n".join(lines)
        width = max((len(c.synopsis) for c in self), default=0)
        lines = [f"{c.synopsis.ljust(width)}  {c.help}" for c in self]
        return "\n".join(lines)
