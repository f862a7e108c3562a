"""The ``kai`` command line: a click group whose commands load lazily.

Each command lives in its own module under :mod:`kai_shell.commands` and is
imported only when it runs (or when ``--help`` lists it), so ``kai --version``
and ``kai --help`` stay fast: nothing here imports httpx, trio or sqlite.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["main", "COMMANDS"]

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "serve": "kai_shell.commands.serve:serve",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


def _version() -> str:
    from importlib.metadata import version

    return version("kai")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=None, package_name="kai", prog_name="kai", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context, **_: Any) -> None:
    """kai: chat with the Keboola AI Assistant, record every chat, replay and search them."""
    ctx.ensure_object(dict)
