"""Keep httpx's command-line tool out of kai's own processes.

``httpx/__init__.py`` runs ``from ._main import main`` for its ``httpx``
console script, and ``httpx._main`` imports click, rich and pygments whenever
they are installed, as they are with kai's ``cli`` extra: about 45 ms added
to each ``import httpx``, which kai never uses (issue 16 measured it in
``import kai_core.client`` + ``KaiClient(...)``, ``kai`` and ``kai-shell``).

:func:`install` puts a stand-in ``httpx._main`` in ``sys.modules`` before
httpx is first imported. Its ``main`` imports the real module and runs it,
so ``httpx.main()`` would still work.

Only kai's console scripts install it (:mod:`kai_shell._entry`): they own
their process. ``import kai_core`` does not, since a library must not
replace another library's modules in an embedder's program.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["install"]

_NAME = "httpx._main"


def _main(*args: Any, **kwargs: Any) -> Any:
    """httpx's ``main``, imported on its first call (see the module docstring)."""
    if getattr(sys.modules.get(_NAME), "main", None) is _main:
        del sys.modules[_NAME]
    real = importlib.import_module(_NAME)
    return real.main(*args, **kwargs)


def install() -> None:
    """Put the stand-in in place, unless httpx (or its ``_main``) is already imported."""
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    stand_in = types.ModuleType(_NAME, "httpx's command line, imported when first called")
    stand_in.main = _main  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
