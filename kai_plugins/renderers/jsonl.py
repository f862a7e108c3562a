"""The ``json`` renderer: one JSON object per event per line.

The lines are what ``kai chat --json-output`` prints, in kai-client's shape
(``type`` first, snake_case fields, ``null`` for absent values), so ``jq``
lines written for kai-client keep working. Each line is flushed at once.
Characters a terminal could act on are escaped (``\\u009b``), the data
unchanged (:func:`kai_core.sanitize.for_terminal_json`).
Front-end notices are not written: the stream holds events only.
"""

from __future__ import annotations

from kai_core.events import Event, event_to_json
from kai_core.render import Renderer
from kai_core.sanitize import for_terminal_json

__all__ = ["JsonRenderer"]


class JsonRenderer(Renderer):
    """Writes :func:`kai_core.events.event_to_json` of every event, one per line."""

    def event(self, event: Event) -> None:
        """Write the event as one line of JSON and flush."""
        self.stream.write(for_terminal_json(event_to_json(event).decode()))
        self.stream.write("\n")
        self.stream.flush()

    def end(self) -> None:
        """Flush."""
        self.stream.flush()
