"""Fold the chunks the emulator writes into the stored UI message (protocol.md A.3).

This is the server's own bookkeeping, written independently of
:mod:`kai_core.assemble` on purpose: the emulator checks the client, so it
must not share the client's mistakes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .. import chunks as c

__all__ = ["MessageBuilder"]


class MessageBuilder:
    """Builds one assistant message (a dict stored in the chat) from chunks.

    :param message: the stored message dict to update in place (an approval
        continuation passes the existing assistant message).
    """

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        self._open: dict[tuple[str, str], dict[str, Any]] = {}

    @property
    def parts(self) -> list[dict[str, Any]]:
        """The message's parts."""
        parts: list[dict[str, Any]] = self.message["parts"]
        return parts

    def tool_part(self, tool_call_id: str) -> dict[str, Any] | None:
        """The tool part of this call, if the message has one."""
        return next((p for p in self.parts if p.get("toolCallId") == tool_call_id), None)

    def feed(self, chunk: c.Chunk) -> None:  # noqa: C901 - one case per chunk type
        """Apply one chunk to the message."""
        match chunk:
            case c.StartStepChunk():
                self.parts.append({"type": "step-start"})
            case c.TextStartChunk() | c.ReasoningStartChunk():
                kind = "text" if isinstance(chunk, c.TextStartChunk) else "reasoning"
                part = {"type": kind, "text": "", "state": "streaming"}
                self._open[(kind, chunk.id)] = part
                self.parts.append(part)
            case c.TextDeltaChunk() | c.ReasoningDeltaChunk():
                kind = "text" if isinstance(chunk, c.TextDeltaChunk) else "reasoning"
                self._open[(kind, chunk.id or "")]["text"] += chunk.delta
            case c.TextEndChunk() | c.ReasoningEndChunk():
                kind = "text" if isinstance(chunk, c.TextEndChunk) else "reasoning"
                self._open.pop((kind, chunk.id))["state"] = "done"
            case c.ToolInputStartChunk():
                part = {"type": f"tool-{chunk.tool_name}", "toolCallId": chunk.tool_call_id}
                if chunk.dynamic:
                    part = {"type": "dynamic-tool", "toolName": chunk.tool_name, **part}
                part["state"] = "input-streaming"
                self.parts.append(part)
            case c.ToolInputAvailableChunk():
                self._tool(chunk.tool_call_id, chunk.tool_name, chunk.dynamic).update(
                    state="input-available", input=chunk.input
                )
            case c.ToolInputErrorChunk():
                self._tool(chunk.tool_call_id, chunk.tool_name, chunk.dynamic).update(
                    state="output-error", input=chunk.input, errorText=chunk.error_text
                )
            case c.ToolApprovalRequestChunk():
                approval: dict[str, Any] = {"id": chunk.approval_id}
                if chunk.approval_descriptor is not None:
                    approval["descriptor"] = chunk.approval_descriptor
                if chunk.input_schema_input is not None:
                    approval["inputSchemaInput"] = chunk.input_schema_input
                if chunk.signature is not None:
                    approval["signature"] = chunk.signature
                self._known(chunk.tool_call_id).update(
                    state="approval-requested", approval=approval
                )
            case c.ToolOutputAvailableChunk():
                part = self._known(chunk.tool_call_id)
                part.update(state="output-available", output=chunk.output)
                part.pop("errorText", None)
            case c.ToolOutputErrorChunk():
                self._known(chunk.tool_call_id).update(
                    state="output-error", errorText=chunk.error_text
                )
            case c.ToolOutputDeniedChunk():
                self._known(chunk.tool_call_id)["state"] = "output-denied"
            case c.SourceUrlChunk() | c.SourceDocumentChunk() | c.FileChunk():
                self.parts.append(_as_part(chunk))
            case c.DataChunk():
                if not chunk.transient:
                    self._data(chunk)
            case c.StartChunk() | c.FinishChunk() | c.MessageMetadataChunk():
                if chunk.message_metadata is not None:
                    _merge(self.message.setdefault("metadata", {}), chunk.message_metadata)
            case _:
                pass  # finish-step, error, abort and unknown chunks store nothing

    def _tool(self, tool_call_id: str, tool_name: str, dynamic: bool | None) -> dict[str, Any]:
        part = self.tool_part(tool_call_id)
        if part is None:  # no tool-input-start came first
            part = {"type": f"tool-{tool_name}", "toolCallId": tool_call_id}
            if dynamic:
                part = {"type": "dynamic-tool", "toolName": tool_name, **part}
            self.parts.append(part)
        return part

    def _known(self, tool_call_id: str) -> dict[str, Any]:
        part = self.tool_part(tool_call_id)
        if part is None:
            raise ValueError(f"the script refers to tool call {tool_call_id} before announcing it")
        return part

    def _data(self, chunk: c.DataChunk) -> None:
        if chunk.id is not None:
            for part in self.parts:
                if part["type"] == chunk.type and part.get("id") == chunk.id:
                    part["data"] = chunk.data
                    return
        part = {"type": chunk.type, "data": chunk.data}
        if chunk.id is not None:
            part["id"] = chunk.id
        self.parts.append(part)


def _as_part(chunk: c.Chunk) -> dict[str, Any]:
    part: dict[str, Any] = msgspec.json.decode(c.encode_chunk(chunk))
    return part


def _merge(target: dict[str, Any], extra: Any) -> None:
    if not isinstance(extra, dict):
        return
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
