"""Full-text search: what it finds, how it ranks, and input that must never raise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog, safe_query

from .test_log_common import Recorder, new_log


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    """A fresh event log, closed after the test."""
    with new_log(tmp_path) as opened:
        yield opened


@pytest.fixture
def chats(log: EventLog) -> tuple[Recorder, Recorder]:
    a, b = Recorder(log, ts=1.0e9), Recorder(log, ts=2.0e9)
    a.send("list my tables", "tables.sse")
    a.send("create a bucket called b1", "bucket-request.sse")
    a.answer_v6(True, None, "bucket-approved.sse")
    b.send("what do the tables say", "hello.sse")
    b.send("tell me about my project", "dynamic-tool.sse")
    return a, b


def test_finds_words_in_tool_output(log: EventLog, chats: tuple[Recorder, Recorder]) -> None:
    hits = log.search("daily_revenue")  # only in list_tables' output
    assert [h.chat_id for h in hits] == [chats[0].chat_id]
    assert hits[0].role == "assistant"
    assert "[daily_revenue]" in hits[0].snippet


def test_finds_tool_names_and_inputs(log: EventLog, chats: tuple[Recorder, Recorder]) -> None:
    assert {h.chat_id for h in log.search("create_bucket")} == {chats[0].chat_id}
    assert log.search("get_project_info")[0].chat_id == chats[1].chat_id


def test_user_words_rank_above_answer_words(
    log: EventLog, chats: tuple[Recorder, Recorder]
) -> None:
    hits = log.search("tables")
    assert hits[0].role == "user"
    assert {h.role for h in hits} == {"user", "assistant"}


def test_filters(log: EventLog, chats: tuple[Recorder, Recorder]) -> None:
    a, b = chats
    assert {h.chat_id for h in log.search("tables", chat_id=b.chat_id)} == {b.chat_id}
    assert {h.role for h in log.search("tables", role="assistant")} == {"assistant"}
    assert {h.chat_id for h in log.search("tables", tool="list_tables")} == {a.chat_id}
    assert {h.chat_id for h in log.search("tables", since=1.5e9)} == {b.chat_id}
    assert {h.chat_id for h in log.search("tables", until=1.5e9)} == {a.chat_id}
    assert len(log.search("tables", limit=1)) == 1
    assert log.search("tables", limit=0) == []


def test_custom_markers(log: EventLog, chats: tuple[Recorder, Recorder]) -> None:
    (hit,) = log.search("bucket", role="user")
    assert hit.snippet == "create a [bucket] called b1"
    (hit,) = log.search("bucket", role="user", marks=("<b>", "</b>"))
    assert "<b>bucket</b>" in hit.snippet


@pytest.mark.parametrize(
    "query",
    [
        str(uuid.uuid4()),
        "in.c-main.customers",
        "-",
        "--",
        '"',
        '"unbalanced',
        "a AND OR NOT",
        "NEAR(tables",
        "tables NOT",
        "(",
        "*",
        "col:tables",
        "user_text:tables",
        "^tables",
        "'quoted'",
        "",
        "   ",
        "tables)",
        "{user_text}: x",
        "ünïcödé ☃",
    ],
)
def test_typed_input_never_raises(
    log: EventLog, chats: tuple[Recorder, Recorder], query: str
) -> None:
    log.search(query)


def test_safe_query_forms() -> None:
    assert safe_query("a-b c") == '"a-b" "c"'
    assert safe_query('say "hi there" now') == '"say" "hi there" "now"'
    assert safe_query("tab*") == '"tab"*'
    assert safe_query("- * ()") == ""
    assert safe_query('x"y') == '"x y"'


def test_phrase_and_prefix(log: EventLog, chats: tuple[Recorder, Recorder]) -> None:
    assert log.search('"called b1"')
    assert not log.search('"b1 called"')
    assert log.search("custom*")


def test_hyphenated_ids_are_found(log: EventLog, chats: tuple[Recorder, Recorder]) -> None:
    assert log.search("in.c-main.customers")[0].chat_id == chats[0].chat_id


def test_raw_mode(log: EventLog, chats: tuple[Recorder, Recorder]) -> None:
    assert log.search("tables NOT customers", raw=True)
    assert log.search("user_text:tables", raw=True)[0].role == "user"
    with pytest.raises(KaiLogError, match="invalid search syntax") as info:
        log.search("NEAR(tables", raw=True)
    assert info.value.code == "log:bad_query"
    with pytest.raises(KaiLogError):
        log.search('"unbalanced', raw=True)


def test_search_sees_appends_at_once(log: EventLog) -> None:
    rec = Recorder(log)
    rec.send("first question about kangaroos", "hello.sse")
    assert len(log.search("kangaroos")) == 1
    rec.send("and wombats", "hello.sse")
    assert len(log.search("wombats")) == 1
