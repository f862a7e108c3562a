"""Full-text search: what it finds, how it ranks, and input that must never raise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog, safe_query

from .log_common import Recorder, new_log


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


# -- bounded work (issue 12, item 13); timings are in bench/bench_log.py ----------


def test_query_terms_are_deduplicated_and_capped() -> None:
    from kai_core.log._search import MAX_TERMS, query_terms

    assert query_terms("bucket " * 300) == ['"bucket"']
    assert query_terms("Bucket bucket BUCKET tab* tab*") == ['"Bucket"', '"tab"*']
    words = [f"w{i}x" for i in range(300)]
    terms = query_terms(" ".join(words))
    assert terms == [f'"{w}"' for w in words[:MAX_TERMS]]
    assert safe_query(" ".join(words)) == " ".join(terms)


def test_a_raw_query_with_too_many_terms_is_refused(log: EventLog) -> None:
    with pytest.raises(KaiLogError) as info:
        log.search(" OR ".join(f"w{i}x" for i in range(40)), raw=True)
    assert info.value.code == "log:bad_query" and "at most 32" in str(info.value)
    assert log.search(" OR ".join(f"w{i}x" for i in range(32)), raw=True) == []


def _user(log: EventLog, chat_id: str, text: str) -> None:
    import msgspec

    from kai_core.log import LogRecord

    message = {"id": chat_id, "role": "user", "parts": [{"type": "text", "text": text}]}
    body = msgspec.json.encode({"message": message})
    log.append([LogRecord(chat_id, chat_id, "client", "user-message", body, ts=1.7e9)])


def test_a_message_with_200000_matches_gets_a_bounded_snippet(log: EventLog) -> None:
    import sqlite3

    from kai_core.log._search import EXCERPT_CHARS, SCAN_CHARS, excerpts, search_messages

    big = "bucket " * 200_000  # 1.4 MB
    _user(log, "big", big)
    _user(log, "deep", "x " * 100_000 + "the zebra is here " + "y " * 1000)
    (hit,) = log.search("bucket")
    assert hit.chat_id == "big" and hit.snippet.startswith("[bucket] [bucket]")
    assert len(hit.snippet) < 200
    # A match past the scanned part is still found and marked (a plain text search).
    (deep,) = log.search("zebra")
    assert "[zebra]" in deep.snippet and deep.snippet.startswith("…")
    # The pieces snippet() sees are bounded, and so is how much of a column is cut up.
    pieces = excerpts(big)
    assert max(len(piece) for _, piece in pieces) <= EXCERPT_CHARS
    assert sum(len(piece) for _, piece in pieces) <= SCAN_CHARS + EXCERPT_CHARS
    assert "".join(piece for _, piece in pieces) == big[: len("".join(p for _, p in pieces))]
    # FTS5's snippet() and highlight() (quadratic in a text's matches) run on
    # the index only for short messages (none here), else on one piece.
    conn = sqlite3.connect(log.path)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        hits = search_messages(conn, "bucket zebra", raw=False) + search_messages(
            conn, "bucket OR zebra", raw=True
        )
    finally:
        conn.close()
    assert {h.chat_id for h in hits} == {"big", "deep"}
    run = " ".join(statements)
    assert "snippet(search_text_fts" not in run and "highlight(search_text_fts" not in run
    assert "snippet(kai_search_excerpt" in run


def test_snippets_mark_stems_prefixes_and_raw_columns(
    log: EventLog, chats: tuple[Recorder, Recorder]
) -> None:
    _user(log, "long", "filler words " * 5000 + "the customers tables were listed")
    (hit,) = log.search("customer", chat_id="long")
    assert "[customers]" in hit.snippet and hit.snippet.startswith("…")
    (hit,) = log.search("custom*", chat_id="long")
    assert "[customers]" in hit.snippet
    (hit,) = log.search("user_text:custom*", chat_id="long", raw=True)
    assert "[customers]" in hit.snippet
    hits = log.search("tables", marks=("<b>", "</b>"))
    assert hits and all("<b>table" in h.snippet for h in hits), hits


@pytest.mark.e2e
async def test_kai_search_answers_on_a_message_with_200000_matches(tmp_path: Path) -> None:
    from .cli_common import Kai

    kai = Kai(tmp_path)
    with EventLog(kai.db) as log:
        _user(log, "big", "bucket " * 200_000)
        _user(log, "other", "a bucket list, and " + " ".join(f"w{i}x" for i in range(300)))
        log.refresh()
    found, many = [
        await kai("search", "bucket", "--json-output"),
        await kai("search", " ".join(f"w{i}x" for i in range(300))),
    ]
    assert found.returncode == 0, found
    assert {h["chat_id"] for h in found.json_lines()} == {"big", "other"}
    assert all("[bucket]" in h["snippet"] for h in found.json_lines())
    assert many.returncode == 0 and "other" in many.stdout, many
