"""Making server-supplied text safe to show on a terminal.

Everything a Kai server sends (answer text, tool names and inputs, error
bodies, chat titles, reasons) is untrusted. Written raw to a terminal, a
control character is *interpreted*: ``\\r`` plus ``ESC [2K`` erases the line
and lets a tool called ``drop_all_tables`` read as ``list_tables`` at the
approval prompt; an OSC sequence sets the window title, even through
stderr and a pipe; ``ESC c`` clears the screen. :func:`for_terminal` makes
such characters *visible* instead, the way ``git`` and ``cat -v`` do:

=====================================  =======================  ===========
character                              shown as                 example
=====================================  =======================  ===========
C0 controls (U+0000–U+001F)            caret notation           ESC → ``^[``, CR → ``^M``
DEL (U+007F)                           caret notation           ``^?``
C1 controls (U+0080–U+009F)            code point               CSI → ``<U+009B>``
bidi controls, line/para separators    code point               RLO → ``<U+202E>``
=====================================  =======================  ===========

With ``multiline=True`` (answer text, a tool's output shown as a block)
newlines and tabs stay, and ``\\r\\n`` counts as a newline; a lone ``\\r``
is still shown as ``^M``. Every front end calls this on server text before
it reaches a terminal or a prompt.

JSON output (``--json-output``) keeps the data exact instead:
:func:`for_terminal_json` escapes, as ``\\uXXXX``, the characters a JSON
encoder leaves raw but a terminal could act on (C1 controls, DEL, bidi
controls); JSON encoders escape C0 controls themselves. The decoded JSON is
unchanged.
"""

from __future__ import annotations

import re

__all__ = ["for_terminal", "for_terminal_json"]

# Bidi embeddings, overrides, isolates and marks (Trojan Source), the Arabic
# letter mark, and the Unicode line and paragraph separators.
_BIDI = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_MULTILINE = re.compile(f"\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
# What JSON encoders write raw (they escape U+0000-U+001F, '"' and '\\').
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\r\n":
        return "\n"
    code = ord(char)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    return f"<U+{code:04X}>"


def for_terminal(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control character and escape sequence made visible.

    :param text: server-supplied text (any string).
    :param multiline: keep newlines and tabs (answer text, error bodies);
        False for one-line fields (tool names, titles, reasons), where a
        newline is shown as ``^J`` too.
    :returns: a string that a terminal shows as it reads, character by
        character, without moving the cursor, changing colours or the title.

    >>> for_terminal("drop_all_tables\\r\\x1b[2KTool list_tables")
    'drop_all_tables^M^[[2KTool list_tables'
    >>> for_terminal("two\\nlines\\x07", multiline=True)
    'two\\nlines^G'
    """
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE_ONE_LINE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_visible, text)


def for_terminal_json(json_text: str) -> str:
    """JSON text with the characters a terminal could act on escaped as ``\\uXXXX``.

    :param json_text: valid JSON, as ``json.dumps(..., ensure_ascii=False)``
        or msgspec writes it. Such characters can only be inside its strings,
        where the escape means the same character: the data is unchanged.

    >>> print(for_terminal_json('{"name": "a' + chr(0x9B) + 'b"}'))
    {"name": "a\\u009bb"}
    """
    if _UNSAFE_IN_JSON.search(json_text) is None:
        return json_text
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
