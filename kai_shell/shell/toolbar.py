"""The bottom toolbar: server state, current chat, tokens used, pending approval.

Drawn by prompt-toolkit in the prompt thread from the :class:`~.state.ShellState`
snapshot; it only formats, so a redraw costs nothing. Its colours are in
:mod:`.theme`.
"""

from __future__ import annotations

from prompt_toolkit.formatted_text import StyleAndTextTuples

from kai_core.sanitize import for_terminal

from .state import ShellState

__all__ = ["toolbar"]


def _short(chat_id: str) -> str:
    return chat_id[:8]


def toolbar(state: ShellState) -> StyleAndTextTuples:
    """The toolbar's fragments for the current state."""
    parts: StyleAndTextTuples = []
    mark = {"online": "●", "offline": "○", "connecting": "◌"}.get(state.server, "○")
    style = f"class:bottom-toolbar.{state.server}"
    parts.append((style, f" {mark} {state.server}"))
    if state.server_note:
        parts.append(("class:bottom-toolbar.dim", f" ({state.server_note})"))
    parts.append(("class:bottom-toolbar.dim", "  │ "))
    if state.chat_id:
        # prompt-toolkit shows C0/C1 controls visibly itself, not bidi overrides.
        title = for_terminal(state.chat_title or "new chat")
        if len(title) > 40:
            title = title[:39] + "…"
        parts.append(("class:bottom-toolbar", f"{title} "))
        parts.append(("class:bottom-toolbar.dim", f"[{_short(state.chat_id)}]"))
    else:
        parts.append(("class:bottom-toolbar.dim", "no chat"))
    tokens_in, tokens_out = state.tokens
    if tokens_in or tokens_out:
        parts.append(("class:bottom-toolbar.dim", "  │ "))
        parts.append(("class:bottom-toolbar", f"tokens {tokens_in} in / {tokens_out} out"))
    if state.pending:
        first = state.pending[0]
        more = f" (+{len(state.pending) - 1})" if len(state.pending) > 1 else ""
        parts.append(("class:bottom-toolbar.dim", "  │ "))
        parts.append(
            (
                "class:bottom-toolbar.pending",
                f"⏸ approval: {first.tool_name or '?'} {first.tool_call_id}{more} "
                "— /approve or /deny",
            )
        )
    if state.busy:
        parts.append(("class:bottom-toolbar.dim", f"  │ {state.busy}…"))
    parts.append(("class:bottom-toolbar.dim", "  │ /help  Esc-Enter newline "))
    return parts
