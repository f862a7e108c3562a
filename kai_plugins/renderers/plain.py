"""The ``plain`` renderer: the answer's text as it streams, other events as tagged lines.

Made to be read in a pipe or a log file::

    Let me list your tables.
    [tool] list_tables started
    [tool] list_tables → {"tables": [...]… (312 chars)
    You have 3 tables: ...
    [tokens] 218 in / 40 out
"""

from __future__ import annotations

from typing import TextIO

from kai_core.events import Event, ReasoningEvent, TextEvent
from kai_core.render import Renderer
from kai_core.sanitize import for_terminal

from ._common import Describer, UsageTally

__all__ = ["PlainRenderer"]

# ANSI styles, used only with color=True: dim for tool chatter, red for errors.
_STYLES = {
    "tool": "\x1b[2m",
    "source": "\x1b[2m",
    "file": "\x1b[2m",
    "tokens": "\x1b[2m",
    "reasoning": "\x1b[2m",
    "approval": "\x1b[33m",
    "error": "\x1b[31m",
    "aborted": "\x1b[31m",
}
_RESET = "\x1b[0m"


class PlainRenderer(Renderer):
    """Text deltas written at once; tool calls, approvals, errors and usage as ``[kind] ...`` lines."""

    def __init__(self, stream: TextIO, *, color: bool = False) -> None:
        super().__init__(stream, color=color)
        self._describer = Describer()
        self._usage = UsageTally()
        self._mid_line = False  # the last write did not end a line
        self._in_reasoning = False

    def _write(self, text: str) -> None:
        # Everything written is made safe here, once: the renderer's own
        # colours are added around it (_line, reasoning), never inside.
        text = for_terminal(text, multiline=True)
        if text:
            self.stream.write(text)
            self._mid_line = not text.endswith("\n")

    def _write_styled(self, style: str, text: str) -> None:
        self.stream.write(f"{style}{for_terminal(text, multiline=True)}{_RESET}")
        self._mid_line = not text.endswith("\n")

    def _newline(self) -> None:
        if self._mid_line:
            self._write("\n")
        self._in_reasoning = False

    def _line(self, kind: str, text: str) -> None:
        self._newline()
        tag = f"[{kind}] "
        if self.color and kind in _STYLES:
            self._write_styled(_STYLES[kind], f"{tag}{text}")
            self._write("\n")
        else:
            self._write(f"{tag}{text}\n")
        self.stream.flush()

    def begin(self, text: str | None) -> None:
        """Start a new answer (the user's text is not echoed)."""
        self._usage.reset()
        self._describer = Describer()

    def event(self, event: Event) -> None:
        """Write text at once; describe the rest in one line."""
        self._usage.see(event)
        if isinstance(event, TextEvent):
            if self._in_reasoning:
                self._newline()
            self._write(event.text)
            self.stream.flush()
            return
        if isinstance(event, ReasoningEvent):
            text = event.text
            if not self._in_reasoning:
                self._newline()
                text = "[reasoning] " + text
                self._in_reasoning = True
            if self.color:
                self._write_styled(_STYLES["reasoning"], text)
            else:
                self._write(text)
            self.stream.flush()
            return
        note = self._describer.note(event)
        if note is not None:
            self._line(note.kind, note.text)

    def notice(self, text: str) -> None:
        """Write the note on a line of its own."""
        self._newline()
        self._write(f"{text}\n")
        self.stream.flush()

    def end(self) -> None:
        """End the last line, then write the token counts."""
        self._newline()
        usage = self._usage.line()
        if usage is not None:
            self._line("tokens", usage)
        self.stream.flush()
