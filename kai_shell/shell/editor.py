"""Composing a message in the user's editor (``/edit``).

``$VISUAL``, then ``$EDITOR``, then ``vi`` -- the same order git uses. The
editor runs in a temporary file that only the user can read; the blocking
call is made from a worker thread by the shell, with the terminal handed
over to the editor (no prompt is active while it runs).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["EditorError", "editor_command", "edit_text"]


class EditorError(Exception):
    """The editor could not be started or exited with an error."""


def editor_command(env: Mapping[str, str] | None = None) -> list[str]:
    """The editor to run, as an argument list."""
    env = os.environ if env is None else env
    command = env.get("VISUAL") or env.get("EDITOR") or "vi"
    return shlex.split(command)


def edit_text(initial: str = "", env: Mapping[str, str] | None = None) -> str:
    """Open the editor on ``initial`` and return what was saved (trailing newlines dropped).

    :raises EditorError: the editor is missing or failed.
    """
    command = editor_command(env)
    fd, name = tempfile.mkstemp(prefix="kai-message-", suffix=".md")  # mode 0600
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(initial)
        try:
            result = subprocess.run([*command, str(path)], check=False)
        except OSError as exc:
            raise EditorError(f"could not start the editor {command[0]!r}: {exc}") from exc
        if result.returncode != 0:
            raise EditorError(f"the editor {command[0]!r} exited with {result.returncode}")
        return path.read_text(encoding="utf-8").rstrip("\n")
    finally:
        path.unlink(missing_ok=True)
