"""The ``kai`` command to show in hints: one that works the way kai was started.

A hint such as "Try: kai history --local" is useless to someone who ran
``uv run kai demo`` in a clone (``kai`` is not on their PATH) or a venv's
``.venv/bin/kai``. So hints name the command as the user can type it:

* ``uv run kai`` (with ``--project`` outside the project) when uv started this process (its parent is ``uv``; where
  the parent cannot be seen, ``$UV`` with kai inside ``$VIRTUAL_ENV``);
* ``kai`` when the ``kai`` on the PATH is this one;
* else the path that was run (``.venv/bin/kai``), or ``python -m kai_shell``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

__all__ = ["kai_command"]


def _started_by_uv() -> bool:
    try:
        parent = Path(f"/proc/{os.getppid()}/comm").read_text().strip()
    except OSError:  # no /proc (macOS): uv's variables, and kai in its environment
        venv = os.environ.get("VIRTUAL_ENV")
        return bool(os.environ.get("UV") and venv and sys.argv[0].startswith(venv))
    return parent == "uv"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _uv_run() -> str:
    # `uv run` finds the project from the working folder; name it when we are elsewhere
    venv = os.environ.get("VIRTUAL_ENV")
    project = Path(venv).parent if venv else None
    if project is None or Path.cwd().is_relative_to(project):
        return "uv run kai"
    return f"uv run --project {shlex.quote(str(project))} kai"


def kai_command() -> str:
    """How to run ``kai`` again, as the user can type it (see the module docs)."""
    if _started_by_uv():
        return _uv_run()
    argv0 = sys.argv[0]
    if Path(argv0).name == "__main__.py":  # python -m kai_shell
        return f"{shlex.quote(sys.executable)} -m kai_shell"
    on_path = shutil.which("kai")
    if on_path is not None and _same_file(on_path, argv0):
        return "kai"
    path = Path(argv0).resolve()
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shlex.quote(shown)
