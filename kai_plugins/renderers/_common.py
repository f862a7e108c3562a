"""What the built-in text renderers share: previews, tool labels, token totals."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from kai_core.events import (
    AbortEvent,
    ApprovalDecisionEvent,
    ErrorEvent,
    Event,
    FileEvent,
    FinishEvent,
    SourceEvent,
    ToolApprovalRequestEvent,
    ToolCallEvent,
    ToolInputErrorEvent,
    ToolOutputDeniedEvent,
    ToolOutputErrorEvent,
    UsageEvent,
)
from kai_core.sanitize import for_terminal

__all__ = ["Describer", "Note", "UsageTally", "preview", "tool_label"]


def preview(value: Any, limit: int = 80) -> str:
    """``value`` as one line of compact JSON, cut to ``limit`` characters.

    A cut preview ends with ``… (N chars)`` so the reader knows how much was left out.
    """
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
        except (TypeError, ValueError):
            text = repr(value)
    text = " ".join(text.split())  # one line, whatever the value held
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} chars)"


def tool_label(tool_name: str | None, tool_call_id: str) -> str:
    """The tool's name, or its call id when the name is not known."""
    if tool_name and tool_name != "unknown":
        return tool_name
    return tool_call_id


class UsageTally:
    """Sums token usage over an answer and its approval continuations.

    Each step's ``data-usage`` event counts once. A ``finish`` carries the
    message's running total, which repeats earlier steps after an approval
    continuation, so it is used only when no step reported usage.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new answer begins)."""
        self._steps = [0, 0]
        self._seen_steps = False
        self._finish = [0, 0]

    def see(self, event: Event) -> None:
        """Count the usage an event carries, if any."""
        if isinstance(event, UsageEvent):
            self._steps[0] += event.usage.prompt_tokens
            self._steps[1] += event.usage.completion_tokens
            self._seen_steps = True
        elif isinstance(event, FinishEvent) and event.usage is not None:
            self._finish = [event.usage.prompt_tokens, event.usage.completion_tokens]

    def totals(self) -> tuple[int, int]:
        """``(prompt tokens, completion tokens)`` so far."""
        counts = self._steps if self._seen_steps else self._finish
        return counts[0], counts[1]

    def line(self) -> str | None:
        """``33 in / 19 out``, or None when nothing was counted."""
        prompt, completion = self.totals()
        if not prompt and not completion:
            return None
        return f"{prompt} in / {completion} out"


class Note(NamedTuple):
    """One line a renderer shows for an event: ``kind`` (tool, approval, error, ...) and text."""

    kind: str
    text: str


class Describer:
    """Says, in one line, what an event other than text means.

    Text and reasoning deltas are not described (renderers stream them); nor
    are events a reader needs not see (step starts, usage, metadata, data
    parts). Keeps the little state needed to not say the same thing twice:
    the SDK follows a ``tool-input-error`` with a ``tool-output-error`` of
    the same text.
    """

    def __init__(self) -> None:
        self._input_errors: dict[str, str] = {}

    def note(self, event: Event) -> Note | None:
        """The line for ``event``, or None when it shows nothing.

        The text is safe for a terminal (:func:`kai_core.sanitize.for_terminal`):
        tool names, inputs, errors and reasons come from the server or a plugin.
        """
        note = self._describe(event)
        if note is None:
            return None
        return Note(note.kind, for_terminal(note.text))

    def _describe(self, event: Event) -> Note | None:  # noqa: C901 - one branch per event type
        if isinstance(event, ToolCallEvent):
            name = tool_label(event.tool_name, event.tool_call_id)
            if event.state == "started":
                return Note("tool", f"{name} started")
            if event.state == "input-available":
                if event.input in (None, {}, [], ""):
                    return None
                return Note("tool", f"{name} ← {preview(event.input)}")
            if event.state == "output-available" and not event.preliminary:
                return Note("tool", f"{name} → {preview(event.output)}")
            return None
        if isinstance(event, ToolApprovalRequestEvent):
            name = tool_label(event.tool_name, event.tool_call_id)
            return Note("approval", f"{name} waits for approval: {preview(event.input)}")
        if isinstance(event, ApprovalDecisionEvent):
            name = tool_label(event.tool_name, event.tool_call_id)
            verdict = "approved" if event.approved else "rejected"
            reason = f" ({event.reason})" if event.reason else ""
            return Note("approval", f"{name} {verdict} by {event.decided_by}{reason}")
        if isinstance(event, ToolInputErrorEvent):
            self._input_errors[event.tool_call_id] = event.error_text
            name = tool_label(event.tool_name, event.tool_call_id)
            return Note("error", f"{name}: {preview(event.error_text, 500)}")
        if isinstance(event, ToolOutputErrorEvent):
            if self._input_errors.get(event.tool_call_id) == event.error_text:
                return None
            name = tool_label(event.tool_name, event.tool_call_id)
            return Note("error", f"{name} failed: {preview(event.error_text, 500)}")
        if isinstance(event, ToolOutputDeniedEvent):
            name = tool_label(event.tool_name, event.tool_call_id)
            return Note("tool", f"{name} denied, not run")
        if isinstance(event, ErrorEvent):
            code = f" ({event.code})" if event.code else ""
            return Note("error", f"{event.message}{code}")
        if isinstance(event, AbortEvent):
            return Note("aborted", event.reason or "the answer was stopped")
        if isinstance(event, SourceEvent):
            where = event.url or event.filename or event.source_id
            title = f"{event.title} " if event.title else ""
            return Note("source", f"{title}<{where}>")
        if isinstance(event, FileEvent):
            return Note("file", f"{event.media_type} ({len(event.url)} chars)")
        return None
