"""Helpers for the event log tests: record chats the way the client does.

:class:`Recorder` plays the client's part with the captured SDK fixtures:
per network read it appends the read's chunks in one call and only then
folds them into the events a live caller receives, so the tests can compare
what replay and the projections make of the log with what was yielded live.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec

from kai_core.assemble import MessageAssembler
from kai_core.chunks import decode_chunk
from kai_core.events import ApprovalDecisionEvent, Event, ToolApprovalRequestEvent
from kai_core.log import EventLog, LogRecord

from .conftest import fixture_payloads

__all__ = ["Recorder", "dump_rows", "new_log", "payloads"]


def payloads(name: str) -> list[bytes]:
    """A fixture's ``data:`` payloads as bytes."""
    return [p.encode() for p in fixture_payloads(name)]


def new_log(tmp_path: Path, name: str = "kai.db") -> EventLog:
    """A fresh log in ``tmp_path``."""
    return EventLog(tmp_path / name)


def _json(value: Any) -> bytes:
    return msgspec.json.encode(value)


class Recorder:
    """Records one chat into a log as the client and the session would."""

    def __init__(
        self, log: EventLog, chat_id: str | None = None, *, read_size: int = 3, ts: float = 1.0e9
    ) -> None:
        self.log = log
        self.chat_id = chat_id or str(uuid.uuid4())
        self.read_size = read_size
        self.live: list[Event] = []
        self.assembler: MessageAssembler | None = None
        self.ts = ts
        self._pending: list[ToolApprovalRequestEvent] = []

    def _tick(self) -> float:
        self.ts += 0.25
        return self.ts

    def client_record(self, turn: str, kind: str, body: Any) -> None:
        """Log a client record."""
        self._client(turn, kind, body)

    def _client(self, turn: str, kind: str, body: Any) -> None:
        self.log.append(
            [LogRecord(self.chat_id, turn, "client", kind, _json(body), ts=self._tick())]
        )

    def user(self, text: str, *, message_id: str | None = None) -> str:
        """Log a user message (a new turn); returns the turn id."""
        turn = uuid.uuid4().hex
        message = {
            "id": message_id or str(uuid.uuid4()),
            "role": "user",
            "parts": [{"type": "text", "text": text}],
        }
        self._client(
            turn,
            "user-message",
            {"message": message, "server": "http://127.0.0.1:1", "backend": "kai-assistant"},
        )
        self.assembler = MessageAssembler()
        return turn

    def stream(
        self,
        chunks: list[bytes],
        *,
        turn: str | None = None,
        assembler: MessageAssembler | None = None,
        agent_decide: dict[str, tuple[bool, str | None]] | None = None,
    ) -> str:
        """Stream chunks as reads of ``read_size``: append each read, then fold it."""
        turn = turn or uuid.uuid4().hex
        if assembler is not None:
            self.assembler = assembler
        assert self.assembler is not None
        for start in range(0, len(chunks), self.read_size):
            read = chunks[start : start + self.read_size]
            ts = self._tick()
            self.log.append(
                [
                    LogRecord(self.chat_id, turn, "server", decode_chunk(p).type, p, ts=ts)
                    for p in read
                ]
            )
            for payload in read:
                for event in self.assembler.feed(decode_chunk(payload)):
                    self.live.append(event)
                    if isinstance(event, ToolApprovalRequestEvent):
                        if event.transport == "agent" and agent_decide is not None:
                            approved, reason = agent_decide[event.tool_call_id]
                            self._decide(event, approved, reason, "agent")
                        else:
                            self._pending.append(event)
        return turn

    def send(self, text: str, fixture: str) -> None:
        """A user message and its answer."""
        turn = self.user(text)
        self.stream(payloads(fixture), turn=turn)

    def _decide(
        self, event: ToolApprovalRequestEvent, approved: bool, reason: str | None, transport: str
    ) -> None:
        body = {
            "approval_id": event.approval_id,
            "tool_call_id": event.tool_call_id,
            "tool_name": event.tool_name,
            "approved": approved,
            "reason": reason,
            "decided_by": "test-policy",
            "transport": transport,
        }
        self._client(uuid.uuid4().hex, "approval", body)
        self.live.append(
            ApprovalDecisionEvent(
                approval_id=event.approval_id,
                tool_call_id=event.tool_call_id,
                tool_name=event.tool_name,
                approved=approved,
                reason=reason,
                decided_by="test-policy",
                chunk=event.chunk,
            )
        )

    def answer_v6(self, approved: bool, reason: str | None, continuation: str) -> None:
        """Decide every pending v6 request, then stream the continuation fixture."""
        assert self.assembler is not None
        message = self.assembler.message
        for event in self._pending:
            self._decide(event, approved, reason, "v6")
            for part in message["parts"]:
                if isinstance(part.get("approval"), dict) and part["approval"]["id"] == (
                    event.approval_id
                ):
                    part["state"] = "approval-responded"
                    part["approval"] = {**part["approval"], "approved": approved}
                    if reason is not None:
                        part["approval"]["reason"] = reason
        self._pending = []
        self.stream(payloads(continuation), assembler=MessageAssembler(message))

    def vote(self, message_id: str, kind: str) -> None:
        """Log a vote."""
        self._client(uuid.uuid4().hex, "vote", {"message_id": message_id, "type": kind})


def dump_rows(log: EventLog) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection row, ordered, for comparing two logs or two moments."""
    import sqlite3

    conn = sqlite3.connect(log.path)
    try:
        out = {}
        for table, key in (
            ("chats", "id"),
            ("messages", "seq"),
            ("tool_calls", "message_seq, tool_call_id"),
            ("votes", "chat_id, message_id"),
            ("search_text", "seq"),
        ):
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
        return out
    finally:
        conn.close()
