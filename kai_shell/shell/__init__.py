"""The parts of ``kai-shell``: commands, completion, keys, toolbar, approval prompt.

:mod:`kai_shell.repl` puts them together. Plugins add commands with
:class:`ShellCommand` through the ``kai_shell_commands`` hook.
"""

from __future__ import annotations

from .commands import Arg as Arg
from .commands import CommandRegistry as CommandRegistry
from .commands import ShellCommand as ShellCommand
from .state import ShellState as ShellState

__all__ = ["Arg", "CommandRegistry", "ShellCommand", "ShellState"]
