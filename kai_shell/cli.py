"""The ``kai`` command line: a click group whose commands load lazily.

Each command lives in a module under :mod:`kai_shell.commands` and is
imported only when it runs (or when ``--help`` lists it), so ``kai
--version`` and ``kai --help`` stay fast: nothing here imports httpx, trio or
sqlite. Global options are kai-client's (``--token``, ``--url``,
``--base-url``, ``--service``) plus ours (``--require-https``, ``--db``,
``--no-log``, ``--renderer``, ``--policy``, ``--debug``).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .runtime import Options, Runtime, fill_from_environment

__all__ = ["COMMANDS", "GLOBAL_OPTIONS", "GlobalOption", "main", "with_global_options"]

# (flags, settings) of each global option; the group takes them with their
# environment variables, commands take copies that override the group's value.
GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("--token",),
        {
            "envvar": "STORAGE_API_TOKEN",
            "help": "Keboola Storage API token (or STORAGE_API_TOKEN).",
        },
    ),
    (
        ("--url",),
        {"envvar": "STORAGE_API_URL", "help": "Keboola Storage API URL (or STORAGE_API_URL)."},
    ),
    (
        ("--base-url",),
        {"envvar": "KAI_BASE_URL", "help": "Kai API base URL; skips discovery (or KAI_BASE_URL)."},
    ),
    (
        ("--service",),
        {
            "envvar": "KAI_SERVICE",
            "type": click.Choice(["agent", "assistant"]),
            "help": "Backend: agent (current) or assistant (legacy). Discovery prefers agent "
            "when listed; with --base-url it says which backend is there (default: agent).",
        },
    ),
    (
        ("--require-https",),
        {
            "is_flag": True,
            "envvar": "KAI_REQUIRE_HTTPS",
            "help": "Refuse plain-http servers other than this machine (or KAI_REQUIRE_HTTPS=1).",
        },
    ),
    (
        ("--db",),
        {
            "envvar": "KAI_DB",
            "type": click.Path(dir_okay=False),
            "help": "Event log file (or KAI_DB).",
        },
    ),
    (("--no-log",), {"is_flag": True, "help": "Do not record this run in the event log."}),
    (("--renderer",), {"help": "How answers are shown: markdown, plain, json, or a plugin's."}),
    (("--policy",), {"type": click.Path(dir_okay=False), "help": "Approval rules file (TOML)."}),
    (
        ("--theme",),
        {
            "envvar": "KAI_THEME",
            "type": click.Choice(["dark", "light"]),
            "help": "kai-shell's colours for a dark or light terminal (or KAI_THEME; "
            "default: from COLORFGBG, else dark).",
        },
    ),
    (("--debug",), {"is_flag": True, "help": "Show tracebacks for errors."}),
)
"""The global options: ``(flags, click.Option settings)``."""


class GlobalOption(click.Option):
    """A global option given after the command: it overrides the group's value.

    Its value is not passed to the command; it is set on the
    :class:`Runtime`'s options, which the group built from the flags before
    the command (and the environment).
    """

    def __init__(self, decls: tuple[str, ...], settings: dict[str, Any]) -> None:
        settings = {k: v for k, v in settings.items() if k != "envvar"}
        super().__init__(decls, expose_value=False, callback=_override, **settings)


def _override(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is None or value is False or param.name is None:
        return  # not given after the command: the group's value stands
    setattr(runtime_of(ctx).options, param.name, value)


class _CommandWithGlobalOptions(click.Command):
    """Lists the global options apart, under "Global options", in ``--help``."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        shared: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and not isinstance(param, click.Argument):
                (shared if isinstance(param, GlobalOption) else own).append(record)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if shared:
            with formatter.section("Global options (also accepted before the command)"):
                formatter.write_dl(shared)
        if isinstance(self, click.Group):
            self.format_commands(ctx, formatter)


class _GroupWithGlobalOptions(_CommandWithGlobalOptions, click.Group):
    """A nested group (``kai log``) whose commands get the global options too."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return None if command is None else with_global_options(command)


_MIXED: dict[type, type] = {}


def with_global_options(command: click.Command) -> click.Command:
    """``command``, accepting every global option after its name (done once).

    A flag the command has itself (``kai serve --token``) keeps the
    command's meaning. The class is swapped for a subclass that lists the
    global options apart in ``--help``: commands come from our modules and
    from plugins, so this cannot rely on how they were declared.
    """
    if isinstance(command, _CommandWithGlobalOptions):
        return command
    taken = {flag for param in command.params for flag in getattr(param, "opts", ())}
    for decls, settings in GLOBAL_OPTIONS:
        if not taken.intersection(decls):
            command.params.append(GlobalOption(decls, settings))
    base = type(command)
    mixin = (
        _GroupWithGlobalOptions if isinstance(command, click.Group) else _CommandWithGlobalOptions
    )
    if base not in _MIXED:
        _MIXED[base] = type(base.__name__, (mixin, base), {"__doc__": base.__doc__})
    command.__class__ = _MIXED[base]
    return command


# name -> ("module:attribute" of a click.Command, one-line help for listings)
COMMANDS: dict[str, tuple[str, str]] = {
    "ping": ("kai_shell.commands.server:ping", "Check if the Kai server is alive."),
    "info": ("kai_shell.commands.server:info", "Get server information."),
    "verify": (
        "kai_shell.commands.verify:verify",
        "Check the token, the Kai service and the message quota.",
    ),
    "chat": (
        "kai_shell.commands.chat:chat",
        "Chat with Kai (one message with -m, else interactive).",
    ),
    "history": ("kai_shell.commands.chats:history", "List chats (from the server, or --local)."),
    "get-chat": ("kai_shell.commands.chats:get_chat", "Show a chat with its messages."),
    "delete-chat": ("kai_shell.commands.chats:delete_chat", "Delete a chat on the server."),
    "vote": ("kai_shell.commands.votes:vote", "Vote on a message (up or down)."),
    "get-votes": ("kai_shell.commands.votes:get_votes", "Get the votes of a chat."),
    "replay": ("kai_shell.commands.local:replay", "Replay a recorded chat from the log."),
    "search": ("kai_shell.commands.local:search", "Search every recorded chat."),
    "log": ("kai_shell.commands.log:log", "Manage the local event log."),
    "mcp": ("kai_shell.commands.mcp:mcp", "Serve Kai to coding agents (MCP server)."),
    "plugins": ("kai_shell.commands.plugins:plugins", "List plugins and their hooks."),
    "policy": (
        "kai_shell.commands.policy:policy",
        "Check what the permission rules decide for a tool (no Kai contact).",
    ),
    "audit": ("kai_shell.commands.audit:audit", "List every tool-call decision and who made it."),
    "permissions": (
        "kai_shell.commands.permissions:permissions",
        "Show or set Kai's own tool permissions beside the local rules.",
    ),
    "telemetry": (
        "kai_shell.commands.telemetry:telemetry",
        "Send recorded chats as OpenTelemetry traces (kai[otel]).",
    ),
    "serve": ("kai_shell.commands.serve:serve", "Run the emulated Kai backend."),
    "demo": ("kai_shell.commands.demo:demo", "Try kai against the built-in emulator."),
    "shell": ("kai_shell.commands.demo:shell", "Open the interactive kai-shell."),
}


def _global_options_of_the_group(fn: Any) -> Any:
    for decls, settings in reversed(GLOBAL_OPTIONS):
        fn = click.option(*decls, **settings)(fn)
    return fn


class LazyGroup(click.Group):
    """A group that imports a command's module only when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            if cmd_name not in self.commands:
                load_plugin_commands(self)  # only for names that are not ours
            found = super().get_command(ctx, cmd_name)
            return None if found is None else with_global_options(found)
        module_name, attr = target[0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return with_global_options(command)

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import reported

        with reported():
            return super().invoke(ctx)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # List commands from the table, without importing their modules.
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        extra = [
            (name, cmd.get_short_help_str(60))
            for name, cmd in sorted(self.commands.items())
            if name not in COMMANDS
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows + extra)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kai", prog_name="kai", message="%(prog)s %(version)s")
@_global_options_of_the_group
@click.pass_context
def main(ctx: click.Context, /, **options: Any) -> None:
    """kai: chat with the Keboola AI Assistant; every chat is recorded, searchable
    and replayable offline.

    \b
    Examples:
      kai demo                                   try it against the built-in emulator
      kai chat -m "What tables do I have?"       one message, answer streamed
      kai history --local                        recorded chats, no network needed
      kai search "bucket"                        full-text search of every chat
    """
    fill_from_environment(options, "kai")
    if options["service"] not in (None, "agent", "assistant"):
        # Only a value from .env.local gets here: click checked the flag and the variable.
        raise click.BadParameter(
            f"{options['service']!r} is not one of 'agent', 'assistant' (from .env.local)",
            param_hint="KAI_SERVICE",
        )
    ctx.ensure_object(dict)
    ctx.obj["runtime"] = Runtime(Options(**options))


def runtime_of(ctx: click.Context) -> Runtime:
    """The :class:`Runtime` the root group built for this invocation."""
    root = ctx.find_root()
    runtime: Runtime = root.obj["runtime"]
    return runtime


def load_plugin_commands(group: click.Group) -> None:
    """Let plugins add commands (only when a command is not found among ours)."""
    from kai_core.plugins import Plugins

    Plugins().call_each("kai_register_commands", cli=group)  # reports on stderr
