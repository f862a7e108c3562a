"""The ``markdown`` renderer: the answer rendered as Markdown with rich, live in a terminal.

On a terminal each text part is shown with ``rich.live.Live`` as it streams,
re-rendered as Markdown at most ten times a second (``vertical_overflow=
"visible"``: a part taller than the screen scrolls instead of being cut).
Refreshes are driven by the events themselves; no refresh thread runs.
Tool calls, approvals and errors are short styled lines between the parts.

When the stream is not a terminal, each finished text part is printed once
as rendered Markdown, without cursor movement (and without colour unless
asked for), so redirecting the output gives a clean document.

rich is imported when the renderer first draws something, never when the
module is imported or the renderer made, so commands (and a shell) that
render nothing do not pay for it (~45 ms).
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, TextIO

from kai_core._terminal import is_terminal
from kai_core.events import Event, ReasoningEvent, StepStartEvent, TextEvent
from kai_core.render import Renderer
from kai_core.sanitize import for_terminal

from ._common import Describer, UsageTally

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

__all__ = ["MarkdownRenderer"]

REFRESH_INTERVAL = 0.1  # seconds between live re-renders of a growing part

# kind → (symbol, rich style)
_LOOK = {
    "tool": ("⚙", "dim"),
    "approval": ("?", "yellow"),
    "error": ("✗", "red"),
    "aborted": ("■", "red"),
    "source": ("↗", "dim"),
    "file": ("▣", "dim"),
    "tokens": ("Σ", "dim"),
}


class MarkdownRenderer(Renderer):
    """Text parts as Markdown (live on a terminal), other events as dim one-line notes."""

    def __init__(self, stream: TextIO, *, color: bool = False) -> None:
        super().__init__(stream, color=color)
        self.live_updates = is_terminal(stream)
        self._describer = Describer()
        self._usage = UsageTally()
        self._part: list[str] = []
        self._part_key: tuple[str, str | None] | None = None  # ("text"|"reasoning", part id)
        self._live: Live | None = None
        self._last_refresh = 0.0

    @cached_property
    def console(self) -> Console:
        """The rich console drawing on the stream (made on first use)."""
        from rich.console import Console

        return Console(
            file=self.stream,
            force_terminal=self.live_updates,
            color_system="auto" if self.color else None,
            highlight=False,
            emoji=False,
        )

    # -- text parts --------------------------------------------------------------

    def _renderable(self) -> Any:
        from rich.markdown import Markdown
        from rich.text import Text

        # Server text: rich passes escape sequences through (it strips only a
        # few C0 controls), so they are made visible before rich sees them.
        text = for_terminal("".join(self._part), multiline=True)
        if self._part_key is not None and self._part_key[0] == "reasoning":
            return Text(f"thinking: {text}", style="dim italic")
        return Markdown(text)

    def _grow(self, kind: str, part_id: str | None, text: str) -> None:
        key = (kind, part_id)
        if key != self._part_key:
            self._close_part()
            self._part_key = key
        self._part.append(text)
        if not self.live_updates:
            return
        now = time.monotonic()
        if self._live is None:
            from rich.live import Live

            self._live = Live(
                self._renderable(),
                console=self.console,
                auto_refresh=False,  # no background thread: events drive refreshes
                vertical_overflow="visible",
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start(refresh=True)
            self._last_refresh = now
        elif now - self._last_refresh >= REFRESH_INTERVAL:
            self._live.update(self._renderable(), refresh=True)
            self._last_refresh = now

    def _close_part(self) -> None:
        if self._part_key is None:
            return
        if self._live is not None:
            self._live.update(self._renderable(), refresh=True)
            self._live.stop()
            self._live = None
        elif "".join(self._part).strip():
            # rich pads paragraphs to the full width; a file wants no trailing blanks.
            with self.console.capture() as captured:
                self.console.print(self._renderable())
            lines = captured.get().splitlines()
            self.stream.write("".join(line.rstrip() + "\n" for line in lines))
        self._part = []
        self._part_key = None

    # -- the contract --------------------------------------------------------------

    def _note(self, kind: str, text: str) -> None:
        from rich.text import Text

        symbol, style = _LOOK.get(kind, ("•", "dim"))
        # soft_wrap: a long note is one line the terminal wraps, not padded rows
        self.console.print(Text(f"{symbol} {text}", style=style), soft_wrap=True)

    def begin(self, text: str | None) -> None:
        """Start a new answer (the user's text is not echoed)."""
        self._close_part()
        self._usage.reset()
        self._describer = Describer()

    def event(self, event: Event) -> None:
        """Grow the current text part, or close it and show a note."""
        self._usage.see(event)
        if isinstance(event, TextEvent):
            self._grow("text", getattr(event.chunk, "id", None), event.text)
            return
        if isinstance(event, ReasoningEvent):
            self._grow("reasoning", event.id or getattr(event.chunk, "id", None), event.text)
            return
        if isinstance(event, StepStartEvent):
            self._close_part()  # a new step's text is a new part, whatever its id
            return
        note = self._describer.note(event)
        if note is None:
            return
        self._close_part()
        self._note(note.kind, note.text)

    def notice(self, text: str) -> None:
        """Show the note on a line of its own."""
        from rich.text import Text

        self._close_part()
        self.console.print(Text(for_terminal(text, multiline=True)), soft_wrap=True)

    def end(self) -> None:
        """Finish the last part, show the token counts, flush."""
        self._close_part()
        usage = self._usage.line()
        if usage is not None:
            self._note("tokens", usage)
        self.stream.flush()
