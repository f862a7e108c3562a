"""Copying text out of the shell: to a file, or to the terminal's clipboard (OSC 52).

OSC 52 asks the terminal emulator itself to set the system clipboard, so
``/copy`` works over SSH and inside containers with no clipboard tool
installed. Inside tmux the sequence is wrapped in tmux's passthrough (DCS)
so that it reaches the outer terminal; tmux needs ``set -g allow-passthrough
on`` or ``set -g set-clipboard on`` for that. Terminals that do not support
OSC 52 ignore it silently, which is why ``/copy FILE`` exists too.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

__all__ = ["MAX_OSC52_BYTES", "osc52_sequence", "copy_to_terminal", "write_to_file"]

MAX_OSC52_BYTES = 1_000_000
"""Larger texts are refused: many terminals drop long OSC 52 sequences."""


def osc52_sequence(text: str, env: Mapping[str, str] | None = None) -> str:
    """The escape sequence that puts ``text`` on the clipboard (``c`` selection)."""
    env = os.environ if env is None else env
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    sequence = f"\x1b]52;c;{payload}\x07"
    if env.get("TMUX"):
        # tmux passthrough: ESC P tmux; <sequence with ESC doubled> ESC \
        sequence = "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    elif env.get("TERM", "").startswith("screen"):
        sequence = "\x1bP" + sequence + "\x1b\\"
    return sequence


def copy_to_terminal(text: str, stream: TextIO) -> None:
    """Write the OSC 52 sequence for ``text`` to the terminal ``stream``.

    :raises ValueError: the text is too long for OSC 52.
    """
    if len(text.encode("utf-8")) > MAX_OSC52_BYTES:
        raise ValueError(
            f"the text is too long for the terminal clipboard ({len(text)} characters); "
            "use /copy FILE"
        )
    stream.write(osc52_sequence(text))
    stream.flush()


def write_to_file(text: str, file: str, *, log: Path | None = None) -> Path:
    """Write ``text`` to ``file`` (``~`` expanded) owner-only and whole or not at
    all, never to one of ``log``'s files; returns the path written.

    :raises KaiLogError: the file is one of the log's, or cannot be written.
    """
    from kai_core.log import write_private

    return write_private(file, text if text.endswith("\n") else text + "\n", log=log)
