"""Key bindings of the shell prompt, on top of prompt-toolkit's Emacs defaults.

The defaults already give: Ctrl-R reverse history search, Ctrl-A/E/K/U/W
line editing, Ctrl-X Ctrl-E to edit the line in ``$EDITOR`` (enabled by the
prompt), bracketed paste (a pasted block, newlines and all, is inserted as
is, never run line by line), and Ctrl-D on an empty line to exit. Here:

* Esc-Enter / Alt-Enter (terminals send Alt-Enter as Esc then Enter) insert
  a newline, so a message can have several lines; Enter sends it.
* Ctrl-C clears the line in place; on an empty line it ends this prompt
  with KeyboardInterrupt, and the shell says how to quit and prompts again.
* Tab completes at once, from the text as it is when Tab is read (see
  :func:`completion_key_bindings`).
"""

from __future__ import annotations

from prompt_toolkit.completion import Completion, get_common_complete_suffix
from prompt_toolkit.document import Document
from prompt_toolkit.filters import emacs_insert_mode, vi_insert_mode
from prompt_toolkit.key_binding import (
    KeyBindings,
    KeyBindingsBase,
    KeyPressEvent,
    merge_key_bindings,
)

from .completer import ShellCompleter

__all__ = ["QUIT_HINT", "completion_key_bindings", "shell_key_bindings"]

QUIT_HINT = "(Ctrl-D or /quit to exit)"


def _does_nothing(document: Document, completion: Completion) -> bool:
    typed = document.text_before_cursor
    return typed[len(typed) + completion.start_position :] == completion.text


def completion_key_bindings(completer: ShellCompleter) -> KeyBindings:
    """Tab that never loses a key press.

    prompt-toolkit's Tab starts a background completion, and does nothing if
    one is already queued: a Tab read together with the keys before it (fast
    typing, a paste, a terminal that delivers several keys in one read) was
    dropped, leaving the menu open and nothing chosen. This Tab walks the menu
    when one is open for the text as it is, and otherwise completes inline
    from ``completer`` (:meth:`ShellCompleter.completions_now`; the
    prompt's own completer is a wrapper around it), like prompt-toolkit's own
    Tab: one completion is inserted, several insert what they share and
    open the menu. File paths keep prompt-toolkit's behaviour (listing a
    directory can block, so it stays in a worker thread).
    """
    bindings = KeyBindings()

    @bindings.add("tab", filter=vi_insert_mode | emacs_insert_mode)
    def _complete(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        menu = buffer.complete_state
        if menu is not None and menu.completions:
            buffer.complete_next()
            return
        found = completer.completions_now(buffer.document)
        if found is None:
            buffer.start_completion(insert_common_part=True)
            return
        if len(found) == 1 and not _does_nothing(buffer.document, found[0]):
            buffer.apply_completion(found[0])
        elif len(found) > 1:
            common = get_common_complete_suffix(buffer.document, found)
            if common:
                buffer.insert_text(common)
            buffer.start_completion()  # the menu, for the text as it now is

    return bindings


def shell_key_bindings(completer: ShellCompleter) -> KeyBindingsBase:
    """The shell's own bindings (merged with the defaults by the prompt)."""
    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("c-c")
    def _clear(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            # nothing to clear: the shell prints QUIT_HINT and prompts again
            event.app.exit(exception=KeyboardInterrupt())

    return merge_key_bindings([bindings, completion_key_bindings(completer)])
