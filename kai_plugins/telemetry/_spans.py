"""From log records to finished spans (plain data: no OpenTelemetry here).

The live plugin and ``kai telemetry backfill`` both feed records, in log
order, to a :class:`SpanBuilder`; it hands back :class:`SpanData` once a span
is finished. Ids are derived from what the log holds (chat id, turn id, tool
call id), so the same chat always yields the same trace and span ids: a
backfill after a live export, or a second backfill, re-sends spans a backend
can recognise instead of new ones.

One ``invoke_agent`` span per turn (one request that streams an answer); a
turn ends at ``finish``, ``cancelled`` or ``stream-error``, or, when none
came, when the chat's next turn starts or the builder is closed (its end is
then its last record). One ``execute_tool {name}`` span per tool call, from
its first chunk to its output (``tool-output-*``), whichever turn that comes
in (on kai-assistant an approved tool runs in the continuation request);
each approval decision is an event ``kai.approval`` on the tool's span.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

from kai_core.records import LogRecord, StoredEvent

__all__ = ["PROVIDER", "AGENT_NAME", "SpanBuilder", "SpanData", "SpanEvent", "span_ids"]

PROVIDER = "keboola.kai"
AGENT_NAME = "Kai"

# The chunk types whose body is read; every other chunk (text deltas, above
# all) only moves the turn's clock, so telemetry costs little per event.
_TOOL_START = frozenset({"tool-input-start", "tool-input-available", "tool-approval-request"})
_TOOL_END = {
    "tool-output-available": "output",
    "tool-output-error": "error",
    "tool-output-denied": "denied",
    "tool-input-error": "error",
}
_TURN_END = frozenset({"finish", "cancelled", "stream-error"})
_decode = msgspec.json.Decoder().decode
_NOTHING: list[SpanData] = []  # returned, never changed: no list per text delta


def _digest(*parts: str, size: int) -> int:
    data = "\x00".join(parts).encode()
    value = int.from_bytes(hashlib.blake2b(data, digest_size=size).digest(), "big")
    return value or 1  # zero is the invalid id


def span_ids(chat_id: str, turn: str) -> tuple[int, int]:
    """The trace id and the ``invoke_agent`` span id of one turn of a chat."""
    return _digest("trace", chat_id, turn, size=16), _digest("agent", chat_id, turn, size=8)


@dataclass
class SpanEvent:
    """An event on a span: name, time (ns since the epoch) and attributes."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass
class SpanData:
    """A finished span, ready to be handed to the OpenTelemetry SDK.

    ``kind`` is ``"client"`` or ``"internal"``; ``error`` is the
    ``error.type`` value when it failed (status ERROR), else None.
    """

    name: str
    kind: str
    trace_id: int
    span_id: int
    parent_id: int | None
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[SpanEvent] = field(default_factory=list)
    error: str | None = None
    first_chunk_ns: int | None = None


@dataclass
class _Turn:
    chat_id: str
    turn: str
    start_ns: int
    last_ns: int
    attributes: dict[str, Any]
    first_chunk_ns: int | None = None
    text: list[str] = field(default_factory=list)
    usage: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    usage_seen: bool = False
    error: str | None = None


@dataclass
class _Tool:
    trace_id: int
    parent_id: int
    span_id: int
    start_ns: int
    attributes: dict[str, Any]
    events: list[SpanEvent] = field(default_factory=list)
    approval_asked_ns: int | None = None


@dataclass
class _Chat:
    server: str | None = None
    backend: str | None = None
    open_turn: str | None = None


class SpanBuilder:
    """Turns a chat's log records, in order, into finished spans.

    :param capture_content: add message and tool content (opt-in).
    :param redact: applied to every content string (removes the token).
    """

    def __init__(
        self, *, capture_content: bool = False, redact: Callable[[str], str] = str
    ) -> None:
        self.capture_content = capture_content
        self.redact = redact
        self._chats: dict[str, _Chat] = {}
        self._turns: dict[tuple[str, str], _Turn] = {}
        self._tools: dict[tuple[str, str], _Tool] = {}
        self._ended: set[tuple[str, str]] = set()

    # -- feeding -------------------------------------------------------------

    def feed(self, record: LogRecord | StoredEvent) -> list[SpanData]:
        """See one record; return the spans it finished (usually none)."""
        kind = record.type
        key = (record.chat_id, record.turn)
        turn = self._turns.get(key)
        if (
            kind == "text-delta"
            and turn is not None
            and turn.first_chunk_ns is not None
            and not self.capture_content
        ):
            # The hot path (most records): it only moves the turn's clock.
            ts = record.ts
            turn.last_ns = time.time_ns() if ts is None else int(ts * 1e9)
            return _NOTHING
        ts = record.ts
        now = time.time_ns() if ts is None else int(ts * 1e9)
        if kind == "approval":
            self._approval(record, now)
            return []
        done: list[SpanData] = []
        if turn is None:
            if key in self._ended or not self._starts_turn(record):
                return []
            turn, done = self._open(record, now)
        turn.last_ns = now
        if record.origin == "server":
            if turn.first_chunk_ns is None:
                turn.first_chunk_ns = now
            done += self._chunk(turn, kind, record.body, now)
        elif kind == "resume":
            turn.attributes["kai.resumed"] = True
        elif kind == "cancelled":
            turn.attributes["kai.cancelled"] = True
        elif kind == "stream-error":
            body = _decode(record.body)
            turn.error = str(body.get("code") or "stream_error")
        if kind in _TURN_END:
            done.append(self._close(turn))
        return done

    def close(self) -> list[SpanData]:
        """End every open turn and tool call (at exit, or at the end of a backfill)."""
        done = [self._close(turn) for turn in list(self._turns.values())]
        for key, tool in list(self._tools.items()):
            tool.attributes["kai.tool.outcome"] = "unfinished"
            done.append(self._tool_span(key, tool, tool.start_ns))
        self._tools.clear()
        return done

    # -- turns ---------------------------------------------------------------

    @staticmethod
    def _starts_turn(record: LogRecord | StoredEvent) -> bool:
        return record.origin == "server" or record.type in ("user-message", "resume")

    def _open(self, record: LogRecord | StoredEvent, now: int) -> tuple[_Turn, list[SpanData]]:
        chat = self._chats.setdefault(record.chat_id, _Chat())
        done: list[SpanData] = []
        earlier = self._turns.get((record.chat_id, chat.open_turn or ""))
        if earlier is not None:
            done.append(self._close(earlier))
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.agent.name": AGENT_NAME,
            "gen_ai.conversation.id": record.chat_id,
        }
        if record.type == "user-message":
            body = _decode(record.body)
            chat.server = body.get("server") or chat.server
            chat.backend = body.get("backend") or chat.backend
            if self.capture_content:
                attributes["gen_ai.input.messages"] = self._json([_ui_message(body.get("message"))])
        else:
            attributes["kai.continuation"] = record.type != "resume"
        if chat.backend:
            attributes["kai.backend"] = chat.backend
        if chat.server:
            parts = urlsplit(chat.server)
            if parts.hostname:
                attributes["server.address"] = parts.hostname
                port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
                if port:
                    attributes["server.port"] = port
        attributes.setdefault("kai.resumed", False)
        attributes["kai.cancelled"] = False
        turn = _Turn(record.chat_id, record.turn, now, now, attributes)
        self._turns[(record.chat_id, record.turn)] = turn
        chat.open_turn = record.turn
        return turn, done

    def _chunk(self, turn: _Turn, kind: str, body: bytes, now: int) -> list[SpanData]:
        if kind == "text-delta":
            if self.capture_content:
                turn.text.append(str(_decode(body).get("delta", "")))
            return []
        if kind in _TOOL_START:
            self._tool_seen(turn, _decode(body), now, kind)
        elif kind in _TOOL_END:
            return self._tool_end(turn.chat_id, _decode(body), now, _TOOL_END[kind])
        elif kind == "start":
            message_id = _decode(body).get("messageId")
            if isinstance(message_id, str):
                turn.attributes["gen_ai.response.id"] = message_id
        elif kind == "data-usage":
            self._usage(turn, _decode(body).get("data"))
        elif kind == "finish":
            data = _decode(body)
            reason = data.get("finishReason")
            if isinstance(reason, str):
                turn.attributes["gen_ai.response.finish_reasons"] = (reason,)
            metadata = data.get("messageMetadata")
            if isinstance(metadata, dict) and not turn.usage_seen:
                self._usage(turn, metadata.get("usage"))
        elif kind == "error":
            turn.error = turn.error or "answer_error"
        elif kind == "abort":
            turn.error = turn.error or "aborted"
        return []

    def _usage(self, turn: _Turn, data: Any) -> None:
        if not isinstance(data, dict):
            return
        turn.usage_seen = True
        names = (
            ("promptTokens", "inputTokens"),
            ("completionTokens", "outputTokens"),
            ("cacheReadTokens",),
            ("cacheWriteTokens",),
            ("reasoningTokens",),
        )
        for i, keys in enumerate(names):
            for key in keys:
                value = data.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    turn.usage[i] += value
                    break

    def _close(self, turn: _Turn) -> SpanData:
        key = (turn.chat_id, turn.turn)
        self._turns.pop(key, None)
        self._ended.add(key)
        chat = self._chats.get(turn.chat_id)
        if chat is not None and chat.open_turn == turn.turn:
            chat.open_turn = None
        attributes = turn.attributes
        if turn.usage_seen:
            attributes["gen_ai.usage.input_tokens"] = turn.usage[0]
            attributes["gen_ai.usage.output_tokens"] = turn.usage[1]
            attributes["kai.usage.cache_read_tokens"] = turn.usage[2]
            attributes["kai.usage.cache_write_tokens"] = turn.usage[3]
            attributes["kai.usage.reasoning_tokens"] = turn.usage[4]
        if turn.error:
            attributes["error.type"] = turn.error
        if turn.first_chunk_ns is not None:
            seconds = (turn.first_chunk_ns - turn.start_ns) / 1e9
            attributes["gen_ai.response.time_to_first_chunk"] = seconds
        if self.capture_content and turn.text:
            reasons = attributes.get("gen_ai.response.finish_reasons") or ("",)
            message = {
                "role": "assistant",
                "parts": [{"type": "text", "content": "".join(turn.text)}],
                "finish_reason": reasons[0],
            }
            attributes["gen_ai.output.messages"] = self._json([message])
        trace_id, span_id = span_ids(turn.chat_id, turn.turn)
        return SpanData(
            name=f"invoke_agent {AGENT_NAME}",
            kind="client",
            trace_id=trace_id,
            span_id=span_id,
            parent_id=None,
            start_ns=turn.start_ns,
            end_ns=turn.last_ns,
            attributes=attributes,
            error=turn.error,
            first_chunk_ns=turn.first_chunk_ns,
        )

    # -- tools and approvals -------------------------------------------------

    def _tool_seen(self, turn: _Turn, data: dict[str, Any], now: int, kind: str) -> None:
        call_id = data.get("toolCallId")
        if not isinstance(call_id, str):
            return
        tool = self._tool(turn.chat_id, call_id, turn, now)
        name = data.get("toolName")
        if isinstance(name, str):
            tool.attributes["gen_ai.tool.name"] = name
        if kind == "tool-approval-request":
            tool.approval_asked_ns = now
        elif kind == "tool-input-available":
            # kai-agent sends no request chunk: a tool that waits, waits from here.
            tool.approval_asked_ns = tool.approval_asked_ns or now
            if self.capture_content and "input" in data:
                tool.attributes["gen_ai.tool.call.arguments"] = self._json(data["input"])

    def _tool(self, chat_id: str, call_id: str, turn: _Turn | None, now: int) -> _Tool:
        key = (chat_id, call_id)
        tool = self._tools.get(key)
        if tool is None:
            if turn is None:
                chat = self._chats.get(chat_id)
                turn = self._turns.get((chat_id, chat.open_turn or "")) if chat else None
            trace_id, parent_id = span_ids(chat_id, turn.turn if turn else call_id)
            tool = _Tool(
                trace_id=trace_id,
                parent_id=parent_id,
                span_id=_digest("tool", chat_id, call_id, size=8),
                start_ns=now,
                attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.provider.name": PROVIDER,
                    "gen_ai.conversation.id": chat_id,
                    "gen_ai.tool.call.id": call_id,
                    "gen_ai.tool.name": "unknown",
                },
            )
            self._tools[key] = tool
        return tool

    def _tool_end(
        self, chat_id: str, data: dict[str, Any], now: int, outcome: str
    ) -> list[SpanData]:
        call_id = data.get("toolCallId")
        if not isinstance(call_id, str):
            return []
        key = (chat_id, call_id)
        tool = self._tools.get(key) or self._tool(chat_id, call_id, None, now)
        tool.attributes["kai.tool.outcome"] = outcome
        if self.capture_content:
            result = data.get("output", data.get("errorText"))
            if result is not None:
                tool.attributes["gen_ai.tool.call.result"] = self._json(result)
        return [self._tool_span(key, tool, now)]

    def _tool_span(self, key: tuple[str, str], tool: _Tool, end_ns: int) -> SpanData:
        self._tools.pop(key, None)
        error = "tool_error" if tool.attributes.get("kai.tool.outcome") == "error" else None
        if error:
            tool.attributes["error.type"] = error
        return SpanData(
            name=f"execute_tool {tool.attributes['gen_ai.tool.name']}",
            kind="internal",
            trace_id=tool.trace_id,
            span_id=tool.span_id,
            parent_id=tool.parent_id,
            start_ns=tool.start_ns,
            end_ns=max(end_ns, tool.start_ns),
            attributes=tool.attributes,
            events=tool.events,
            error=error,
        )

    def _approval(self, record: LogRecord | StoredEvent, now: int) -> None:
        body = _decode(record.body)
        call_id = body.get("tool_call_id")
        if not isinstance(call_id, str):
            return
        tool = self._tool(record.chat_id, call_id, None, now)
        if isinstance(body.get("tool_name"), str):
            tool.attributes["gen_ai.tool.name"] = body["tool_name"]
        attributes = approval_attributes(body)
        if tool.approval_asked_ns is not None:
            attributes["kai.approval.wait_ms"] = round((now - tool.approval_asked_ns) / 1e6, 3)
        if self.capture_content and isinstance(body.get("reason"), str):
            attributes["kai.approval.reason"] = self.redact(body["reason"])
        tool.events.append(SpanEvent("kai.approval", now, attributes))

    def _json(self, value: Any) -> str:
        return self.redact(msgspec.json.encode(value).decode())


# The deciders kai itself names; any other name is a plugin's.
_DECIDERS = {
    "user": "user",
    "auto-approve": "auto-approve",
    "policy-file": "rule",
    "no-terminal": "no-terminal",
    "server": "server",
}


def approval_attributes(body: dict[str, Any]) -> dict[str, Any]:
    """The ``kai.approval`` event's attributes from an approval record's body.

    Tolerant of both shapes of the record: today's (``decided_by``) and the
    permission engine's (``rule``, ``scope``, ``source`` or ``file`` and
    ``line``, when present).
    """
    decided_by = str(body.get("decided_by") or "unknown")
    attributes: dict[str, Any] = {
        "kai.approval.decision": "approved" if body.get("approved") else "denied",
        "kai.approval.decided_by": decided_by,
        "kai.approval.decider": _DECIDERS.get(decided_by, "plugin"),
    }
    if isinstance(body.get("transport"), str):
        attributes["kai.approval.transport"] = body["transport"]
    if body.get("rule") is not None:
        attributes["kai.approval.rule"] = str(body["rule"])
        attributes["kai.approval.decider"] = "rule"
    if body.get("scope") is not None:
        attributes["kai.approval.scope"] = str(body["scope"])
    source = body.get("source") or body.get("file")
    if source is not None:
        line = body.get("line")
        attributes["kai.approval.source"] = f"{source}:{line}" if line is not None else str(source)
    return attributes


def _ui_message(message: Any) -> dict[str, Any]:
    """A UI message in the GenAI conventions' message shape (text parts only)."""
    parts = message.get("parts", []) if isinstance(message, dict) else []
    texts = [p.get("text", "") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
    return {"role": "user", "parts": [{"type": "text", "content": t} for t in texts]}
