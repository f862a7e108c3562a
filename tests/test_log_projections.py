"""Projections: chats, messages (as the assembler builds them), tool calls, votes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from kai_core.assemble import MessageAssembler
from kai_core.chunks import decode_chunk
from kai_core.log import EventLog, LogRecord

from .log_common import Recorder, dump_rows, new_log, payloads


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    """A fresh event log, closed after the test."""
    with new_log(tmp_path) as opened:
        yield opened


def _assembled(*names: str) -> dict:
    a = MessageAssembler()
    for name in names:
        for p in payloads(name):
            a.feed(decode_chunk(p))
    return a.message


def _busy_log(log: EventLog) -> list[Recorder]:
    """Three chats, interleaved, with tools, approvals, errors and votes."""
    a, b, c = Recorder(log, read_size=2), Recorder(log, read_size=5), Recorder(log, read_size=1)
    a.send("hello there", "hello.sse")
    b.send("list my tables please", "tables.sse")
    a.send("create a bucket called b1", "bucket-request.sse")
    c.send("boom", "boom.sse")
    a.answer_v6(True, None, "bucket-approved.sse")
    b.send("tell me about my project", "dynamic-tool.sse")
    c.send("think", "think.sse")
    a.vote("00000000-0000-4000-8000-000000000003", "up")
    c.send("bad input", "invalid-tool-input.sse")
    b.vote("00000000-0000-4000-8000-000000000002", "down")
    log.append([LogRecord(c.chat_id, uuid.uuid4().hex, "client", "delete-chat", b"{}")])
    return [a, b, c]


def test_messages_are_assembled_exactly(log: EventLog) -> None:
    rec = Recorder(log)
    rec.send("hello", "hello.sse")
    rec.send("list my tables", "tables.sse")
    detail = log.get_chat(rec.chat_id)
    assert detail is not None
    roles = [m.role for m in detail.messages]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert detail.messages[0].parts == [{"type": "text", "text": "hello"}]
    assert detail.messages[1].parts == _assembled("hello.sse")["parts"]
    assert detail.messages[3].parts == _assembled("tables.sse")["parts"]
    assert detail.messages[1].text.startswith("Hello! I'm Kai")
    assert detail.chat.title == "hello"
    assert detail.chat.message_count == 4
    assert detail.chat.prompt_tokens == 33 + sum(m.prompt_tokens for m in detail.messages[3:])
    assert detail.chat.server == "http://127.0.0.1:1"
    (call,) = detail.tool_calls
    assert call.tool_name == "list_tables" and call.state == "output-available"
    assert call.output["count"] == 3


def test_v6_approval_continues_the_same_message(log: EventLog) -> None:
    rec = Recorder(log)
    rec.send("create a bucket called b1", "bucket-request.sse")
    pending = log.get_chat(rec.chat_id)
    assert pending is not None
    (call,) = pending.tool_calls
    assert call.state == "approval-requested" and call.approved is None
    rec.answer_v6(True, "looks fine", "bucket-approved.sse")
    detail = log.get_chat(rec.chat_id)
    assert detail is not None
    assert [m.role for m in detail.messages] == ["user", "assistant"]
    answer = detail.messages[1]
    assert answer.parts == rec.assembler.message["parts"] if rec.assembler else False
    assert answer.text.endswith("Done: bucket in.c-b1 was created.")
    assert answer.finish_reason == "stop"
    assert answer.prompt_tokens == 38 + 138
    (call,) = detail.tool_calls
    assert (call.state, call.approved, call.decided_by, call.reason) == (
        "output-available",
        True,
        "test-policy",
        "looks fine",
    )
    assert call.approval_id == "aitxt-000000000000000000000007"
    assert call.output["created"] is True


def test_agent_approval_is_projected(log: EventLog) -> None:
    rec = Recorder(log)
    turn = rec.user("create a bucket")
    rec.assembler = MessageAssembler(agent_waiting=lambda name: name == "create_bucket")
    chunks = [p for p in payloads("bucket-request.sse") if b"approval-request" not in p]
    rec.stream(chunks, turn=turn, agent_decide={"call_000002": (False, "not today")})
    detail = log.get_chat(rec.chat_id)
    assert detail is not None
    (call,) = detail.tool_calls
    assert (call.approval_id, call.approved, call.decided_by, call.reason) == (
        "call_000002",  # kai-agent answers by tool call id
        False,
        "test-policy",
        "not today",
    )


def test_votes_and_server_side_delete(log: EventLog) -> None:
    a, b, c = _busy_log(log)
    detail = log.get_chat(a.chat_id)
    assert detail is not None and detail.votes == {"00000000-0000-4000-8000-000000000003": "up"}
    gone = log.get_chat(c.chat_id)
    assert gone is not None and gone.chat.deleted_ts is not None
    assert {ch.id for ch in log.chats()} == {a.chat_id, b.chat_id, c.chat_id}
    assert [ch.id for ch in log.chats(limit=1)] == [c.chat_id]


def test_rebuild_gives_identical_rows(tmp_path: Path) -> None:
    # One log caught up after every single append, one projected only at the end
    # (by a fresh rebuild), one after a reopen half-way: identical rows.
    stepwise = new_log(tmp_path, "a.db")
    original_append = stepwise.append

    def append_and_refresh(records: list[LogRecord]) -> int:
        seq = original_append(records)
        stepwise.refresh()
        return seq

    stepwise.append = append_and_refresh  # type: ignore[method-assign]
    _busy_log(stepwise)
    incremental = dump_rows(stepwise)
    assert incremental["messages"] and incremental["tool_calls"] and incremental["votes"]
    stepwise.rebuild()
    assert dump_rows(stepwise) == incremental
    stepwise.close()

    other = new_log(tmp_path, "b.db")
    _busy_log(other)
    other.refresh()
    other.close()
    reopened = EventLog(tmp_path / "b.db")
    reopened.rebuild()
    rebuilt = dump_rows(reopened)
    reopened.close()
    ignore_ids = lambda rows: {  # noqa: E731 - chat ids and times differ between logs
        k: len(v) for k, v in rows.items()
    }
    assert ignore_ids(rebuilt) == ignore_ids(incremental)


def test_catch_up_across_processes_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    first = EventLog(path)
    second = EventLog(path)
    rec = Recorder(first, read_size=4)
    rec.send("create a bucket called b1", "bucket-request.sse")
    second.refresh()  # the other "process" projects half of the story
    rec.answer_v6(True, None, "bucket-approved.sse")
    first.refresh()  # this one's cache is stale now; it must notice
    rows = dump_rows(first)
    second.rebuild()
    assert dump_rows(second) == rows
    first.close()
    second.close()


def test_import_chat_adds_only_unknown_messages(log: EventLog) -> None:
    rec = Recorder(log)
    rec.user("hello", message_id="11111111-1111-4111-8111-111111111111")
    rec.stream(payloads("hello.sse"))
    server_detail = {
        "id": rec.chat_id,
        "title": "Greeting",
        "messages": [
            {
                "id": "11111111-1111-4111-8111-111111111111",
                "role": "user",
                "parts": [{"type": "text", "text": "hello"}],
            },
            {
                "id": "00000000-0000-4000-8000-000000000001",
                "role": "assistant",
                "parts": [{"type": "text", "text": "Hello! (as stored)"}],
            },
            {
                "id": "22222222-2222-4222-8222-222222222222",
                "role": "user",
                "parts": [{"type": "text", "text": "asked in the web app about zanzibar"}],
                "createdAt": "2030-01-01T00:00:00.000Z",
            },
        ],
    }
    assert log.import_chat(server_detail) == 1
    assert log.import_chat(server_detail) == 0
    detail = log.get_chat(rec.chat_id)
    assert detail is not None
    assert detail.chat.title == "Greeting"
    assert len(detail.messages) == 3
    imported = detail.messages[-1]
    assert imported.imported and imported.ts == 1893456000.0
    assert [h.message_id for h in log.search("zanzibar")] == [imported.id]
    (record,) = [e for e in log.events(rec.chat_id) if e.type == "imported-message"]
    assert msgspec.json.decode(record.body)["message"] == server_detail["messages"][2]


def test_import_chat_from_struct(log: EventLog) -> None:
    class Message(msgspec.Struct):
        id: str
        role: str
        parts: list[dict]

    class Detail(msgspec.Struct):
        id: str
        title: str
        messages: list[Message]

    detail = Detail(
        "c-web", "From the web", [Message("m1", "user", [{"type": "text", "text": "hi"}])]
    )
    assert log.import_chat(detail) == 1
    (chat,) = log.chats()
    assert (chat.id, chat.title, chat.message_count) == ("c-web", "From the web", 1)
