"""kai_core.sanitize.for_terminal: server text made visible, never interpreted."""

from __future__ import annotations

import doctest

import pytest

import kai_core.sanitize
from kai_core import for_terminal


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(kai_core.sanitize).failed == 0


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("drop_all_tables\r\x1b[2KTool list_tables", "drop_all_tables^M^[[2KTool list_tables"),
        ("\x1b]0;pwned\x07title", "^[]0;pwned^Gtitle"),  # OSC: set the window title
        ("\x1bc", "^[c"),  # RIS: clear the screen
        ("a\x7fb\x00c", "a^?b^@c"),
        ("\x9b2J", "<U+009B>2J"),  # C1 CSI
        ("safe\u202egpj.exe", "safe<U+202E>gpj.exe"),  # right-to-left override
        ("tab\there\nnext", "tab^Ihere^Jnext"),
        ("plain text, émoji 👍 and 日本語", "plain text, émoji 👍 and 日本語"),
    ],
)
def test_one_line_fields_show_every_control(raw: str, shown: str) -> None:
    assert for_terminal(raw) == shown


def test_multiline_keeps_lines_and_tabs_but_not_a_lone_carriage_return() -> None:
    text = "line 1\r\n\tline 2\nfake\r\x1b[1Aover"
    assert for_terminal(text, multiline=True) == "line 1\n\tline 2\nfake^M^[[1Aover"


def test_every_code_point_below_a_space_and_in_c1_is_made_visible() -> None:
    for code in [*range(0x20), *range(0x7F, 0xA0)]:
        shown = for_terminal(chr(code))
        assert shown.isprintable() and len(shown) > 1, hex(code)
