"""Key bindings of the shell prompt, on top of prompt-toolkit's Emacs defaults.

The defaults already give: Ctrl-R reverse history search, Ctrl-A/E/K/U/W
line editing, Ctrl-X Ctrl-E to edit the line in ``$EDITOR`` (enabled by the
prompt), bracketed paste (a pasted block, newlines and all, is inserted as
is, never run line by line), and Ctrl-D on an empty line to exit. Here:

* Esc-Enter / Alt-Enter (terminals send Alt-Enter as Esc then Enter) insert
  a newline, so a message can have several lines; Enter sends it.
* Ctrl-C clears the line in place; on an empty line it ends this prompt
  with KeyboardInterrupt, and the shell says how to quit and prompts again.
"""

from __future__ import annotations

from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

__all__ = ["QUIT_HINT", "shell_key_bindings"]

QUIT_HINT = "(Ctrl-D or /quit to exit)"


def shell_key_bindings() -> KeyBindings:
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

    return bindings
