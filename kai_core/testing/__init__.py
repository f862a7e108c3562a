"""An emulated Kai backend for demos, tests and your own test suites.

:func:`open_emulator` serves the real HTTP surface of Kai (both backends:
``kai-agent`` and ``kai-assistant``) on loopback, with hypercorn on trio,
answering with deterministic scripted scenarios and optional faults. The
pytest plugin (installed with ``kai``) gives the ``kai_emulator`` and
``kai_client`` fixtures.

Quick start in a pytest-trio test::

    async def test_my_bot(kai_emulator):
        kai_emulator.script(lambda text: [Say("Sure.")], trigger="help me")
        ...  # point your code at kai_emulator.base_url with kai_emulator.token
        assert kai_emulator.state.chats

Built-in triggers (case-insensitive substrings): "list my tables" / "what
tables do i have" (a read-only tool), "create a bucket called NAME" (a
write tool that needs approval), "two buckets", "tell me about my project"
(an MCP-style dynamic tool), "fail" (a failing tool), "boom" (a model
error), "abort", "think" (reasoning), "slow", "hello"; anything else gets a
short plain answer.

Names load on first use (PEP 562): ``import kai_core.testing`` (which the
pytest plugin does in every test run of a project that has kai installed)
imports neither starlette nor hypercorn. Those come with the ``emulator``
extra; using the emulator without it raises
:class:`~kai_core._extras.MissingExtraError` saying what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "EmulatorApp": "app",
    "Faults": "faults",
    "BUILTIN_SCENARIOS": "scenarios",
    "Abort": "scenarios",
    "CallTool": "scenarios",
    "Emit": "scenarios",
    "Fail": "scenarios",
    "Pause": "scenarios",
    "Reply": "scenarios",
    "Say": "scenarios",
    "Scenario": "scenarios",
    "Step": "scenarios",
    "Think": "scenarios",
    "ToolResult": "scenarios",
    "DEFAULT_TOKEN": "server",
    "Emulator": "server",
    "open_emulator": "server",
    "serve": "server",
    "EmulatorState": "state",
    "BUILTIN_TOOLS": "tools",
    "Tool": "tools",
    "ToolFailure": "tools",
}
# Submodules that import the emulator's web stack.
_NEEDS_EXTRA = frozenset({"app", "server"})

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module_name in _NEEDS_EXTRA:
        from .._extras import require

        require("emulator", "kai's emulator")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from .app import EmulatorApp as EmulatorApp
    from .faults import Faults as Faults
    from .scenarios import BUILTIN_SCENARIOS as BUILTIN_SCENARIOS
    from .scenarios import Abort as Abort
    from .scenarios import CallTool as CallTool
    from .scenarios import Emit as Emit
    from .scenarios import Fail as Fail
    from .scenarios import Pause as Pause
    from .scenarios import Reply as Reply
    from .scenarios import Say as Say
    from .scenarios import Scenario as Scenario
    from .scenarios import Step as Step
    from .scenarios import Think as Think
    from .scenarios import ToolResult as ToolResult
    from .server import DEFAULT_TOKEN as DEFAULT_TOKEN
    from .server import Emulator as Emulator
    from .server import open_emulator as open_emulator
    from .server import serve as serve
    from .state import EmulatorState as EmulatorState
    from .tools import BUILTIN_TOOLS as BUILTIN_TOOLS
    from .tools import Tool as Tool
    from .tools import ToolFailure as ToolFailure
