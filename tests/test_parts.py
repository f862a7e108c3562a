"""Reading stored message parts: one helper for a part's tool name, used by the client and the CLI."""

from __future__ import annotations

from kai_core._parts import tool_name_of
from kai_shell.commands.chats import format_part


def test_tool_name_of() -> None:
    assert tool_name_of({"type": "tool-create_bucket"}) == "create_bucket"
    assert tool_name_of({"type": "dynamic-tool", "toolName": "mcp_x"}) == "mcp_x"
    assert tool_name_of({"type": "tool-x", "toolName": "y"}) == "y"
    assert tool_name_of({"type": "text"}) is None
    assert tool_name_of({"type": "dynamic-tool"}) is None  # not "ic-tool"
    assert tool_name_of({}) is None


def test_get_chat_shows_a_nameless_dynamic_tool_without_a_made_up_name() -> None:
    lines = format_part({"type": "dynamic-tool", "state": "input-available", "input": {}})
    assert lines[0].startswith("[tool ?: input-available]")
    lines = format_part({"type": "tool-list_tables", "state": "output-available", "output": 1})
    assert lines[0].startswith("[tool list_tables: output-available]")
