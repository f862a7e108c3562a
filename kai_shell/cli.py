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

__all__ = ["COMMANDS", "main"]

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
    "serve": ("kai_shell.commands.serve:serve", "Run the emulated Kai backend."),
    "demo": ("kai_shell.commands.demo:demo", "Try kai against the built-in emulator."),
    "shell": ("kai_shell.commands.demo:shell", "Open the interactive kai-shell."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            if cmd_name not in self.commands:
                load_plugin_commands(self)  # only for names that are not ours
            return super().get_command(ctx, cmd_name)
        module_name, attr = target[0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

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
@click.option(
    "--token", envvar="STORAGE_API_TOKEN", help="Keboola Storage API token (or STORAGE_API_TOKEN)."
)
@click.option(
    "--url", envvar="STORAGE_API_URL", help="Keboola Storage API URL (or STORAGE_API_URL)."
)
@click.option(
    "--base-url", envvar="KAI_BASE_URL", help="Kai API base URL; skips discovery (or KAI_BASE_URL)."
)
@click.option(
    "--service",
    envvar="KAI_SERVICE",
    type=click.Choice(["agent", "assistant"]),
    help="Backend: agent (current) or assistant (legacy). Discovery prefers agent when "
    "listed; with --base-url it says which backend is there (default: agent).",
)
@click.option(
    "--require-https",
    is_flag=True,
    envvar="KAI_REQUIRE_HTTPS",
    help="Refuse plain-http servers other than this machine (or KAI_REQUIRE_HTTPS=1).",
)
@click.option(
    "--db", envvar="KAI_DB", type=click.Path(dir_okay=False), help="Event log file (or KAI_DB)."
)
@click.option("--no-log", is_flag=True, help="Do not record this run in the event log.")
@click.option("--renderer", help="How answers are shown: markdown, plain, json, or a plugin's.")
@click.option("--policy", type=click.Path(dir_okay=False), help="Approval rules file (TOML).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, **options: Any) -> None:
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
