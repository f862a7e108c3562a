"""Tests of the example plugin, as its own authors would write them."""

from __future__ import annotations

import io
from typing import Any

import kai_approval_example

from kai_core.plugins import Plugins
from kai_core.policy import ApprovalContext, ApprovalRequest


def decide(tool_name: str) -> Any:
    plugins = Plugins(load_entry_points=False)  # only this plugin, nothing installed
    plugins.register(kai_approval_example, name="approval-example")
    request = ApprovalRequest(tool_name=tool_name, tool_call_id="c1", approval_id="a1")
    context = ApprovalContext(chat_id="chat-1")
    found = plugins.call_first("kai_approve_tool", request=request, context=context)
    return None if found is None else found[1]


def test_read_only_tools_are_approved() -> None:
    assert decide("list_tables").approved


def test_creating_and_deleting_is_rejected_with_a_reason() -> None:
    for tool_name in ("create_bucket", "delete_table", "drop_bucket"):
        decision = decide(tool_name)
        assert not decision.approved
        assert decision.reason == "creating and deleting is off (approval-example)"


def test_other_tools_are_left_to_the_user() -> None:
    assert decide("update_description") is None


def test_quiet_renderer_writes_only_text() -> None:
    from kai_core.events import TextEvent, ToolCallEvent

    out = io.StringIO()
    renderer = kai_approval_example.QuietRenderer(out)
    renderer.begin("hi")
    renderer.event(TextEvent(text="Hello"))
    renderer.event(ToolCallEvent(tool_call_id="c1", tool_name="list_tables", state="started"))
    renderer.event(TextEvent(text=" there"))
    renderer.end()
    assert out.getvalue() == "Hello there\n"
