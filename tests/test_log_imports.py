"""Imports that could brick a log, and records the projections cannot fold
(issue 12, items 7 and 8).

An import line with an absurd position or time, or a field of the wrong
type, is refused whole, naming the line; a server message kai cannot read is
left out with a warning naming its chat; and a record that is already in a
log (an older kai imported it, or a frame is damaged) is left out of the
projections with a warning, never a wall for the rest of the log.
"""

from __future__ import annotations

import io
import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pytest

from kai_core.exceptions import KaiLogError
from kai_core.log import (
    IMPORTED_MESSAGE,
    EventLog,
    LogRecord,
    SkippedRecordWarning,
)
from kai_core.log._validate import MAX_SEQ
from kai_core.testing import Emulator
from kai_shell.errors import EXIT_CODES

from .cli_common import TOKEN, Kai, chat_id_of, gather
from .log_common import Recorder, dump_rows


@pytest.fixture
def kai_emulator_options() -> dict[str, Any]:
    return {"token": TOKEN}


def _message(**part: Any) -> dict[str, Any]:
    return {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hello", **part}]}


def _line(**fields: Any) -> bytes:
    line = {
        "seq": 1,
        "chat_id": "c1",
        "turn": "t1",
        "ts": 1.7e9,
        "origin": "client",
        "type": "user-message",
        "body": {"message": _message()},
    }
    line.update(fields)
    return json.dumps(line).encode() + b"\n"


BAD_LINES = {
    "seq 2^63-1": (_line(seq=2**63 - 1), "$.seq"),
    "seq 2^64": (_line(seq=2**64), "$.seq"),
    "seq 0": (_line(seq=0), "$.seq"),
    "ts 1e300": (_line(ts=1e300), "$.ts"),
    "ts -1e18": (_line(ts=-1e18), "$.ts"),
    "empty chat id": (_line(chat_id=""), "$.chat_id"),
    "text an int": (_line(body={"message": _message(text=5)}), "text must be str"),
    "role a list": (
        _line(body={"message": {"id": "m", "role": ["x"], "parts": []}}),
        "role must be str",
    ),
    "approval id a list": (
        _line(
            type="imported-message",
            body={
                "message": {
                    "id": "m2",
                    "role": "assistant",
                    "parts": [{"type": "tool-x", "toolCallId": "c", "approval": {"id": ["a"]}}],
                }
            },
        ),
        "approval.id must be str",
    ),
    "approved a string": (
        _line(
            type="approval",
            body={"approval_id": "a", "tool_call_id": "c", "approved": "no"},
        ),
        "approved must be bool",
    ),
    "user message a list": (_line(body=[1, 2]), "must be an object"),
}


def test_bad_import_lines_are_refused_whole_naming_the_line(tmp_path: Path) -> None:
    with EventLog(tmp_path / "kai.db") as log:
        for name, (bad, why) in BAD_LINES.items():
            good = _line(seq=1, turn=f"good-{name}")
            with pytest.raises(KaiLogError) as info:
                log.import_jsonl(io.BytesIO(good + bad))
            assert info.value.code == "log:bad_import", name
            assert "line 2" in str(info.value) and why in str(info.value), (name, info.value)
            assert log.events() == [], name  # nothing half-imported
        # The log takes appends, and an import of a far (but sane) position too.
        log.import_jsonl(io.BytesIO(_line(seq=MAX_SEQ)))
        assert log.append([LogRecord("c2", "t2", "client", "vote", b"{}")]) == MAX_SEQ + 1
        # A position past the bound, from a file made by hand, is renumbered.
        from kai_core.log._maintenance import import_events
        from kai_core.log._records import StoredEvent

        with log._maintenance("importing") as conn:
            far = StoredEvent(2**62, "c3", "t3", 1.7e9, "client", "vote", b"{}")
            assert import_events(conn, [far]) == 1
        assert log.events("c3")[0].seq == MAX_SEQ + 2
        assert log.append([LogRecord("c2", "t4", "client", "vote", b"{}")]) == MAX_SEQ + 3
        log.rebuild()
        assert [c.id for c in log.chats()] != []


@pytest.mark.e2e
async def test_kai_log_import_refuses_a_bad_line_and_the_log_keeps_working(
    kai: Kai, tmp_path: Path
) -> None:
    files = []
    for i, (bad, _why) in enumerate(BAD_LINES.values()):
        path = tmp_path / f"bad-{i}.jsonl"
        path.write_bytes(_line(turn=f"good-{i}") + bad)
        files.append(path)
    results = []
    for path in files:  # one log: run one after another
        results.append(await kai("log", "import", str(path)))
    for result, (name, (_bad, why)) in zip(results, BAD_LINES.items(), strict=True):
        assert result.returncode == EXIT_CODES["usage"], (name, result)
        assert "line 2" in result.stderr and why in result.stderr, (name, result)
        assert len(result.stderr.strip().splitlines()) == 1, (name, result)
    good = tmp_path / "good.jsonl"
    good.write_bytes(_line())
    imported, history, stats = [
        await kai("log", "import", str(good)),
        await kai("history", "--local"),
        await kai("log", "stats", "--json-output"),
    ]
    assert imported.returncode == 0 and "Imported 1 events" in imported.stdout, imported
    assert history.returncode == 0 and "c1" in history.stdout, history
    assert stats.json()["events"] == 1
    with EventLog(kai.db) as log:
        assert log.append([LogRecord("c1", "t9", "client", "vote", b"{}")]) == 2


@pytest.mark.e2e
async def test_a_server_message_kai_cannot_read_is_left_out_with_a_warning(
    kai: Kai, kai_emulator: Emulator
) -> None:
    online = kai.online(kai_emulator)
    made = await gather(
        kai(*online, "chat", "-m", "list my tables", db=kai.root / "elsewhere.db"),
        kai(*online, "chat", "-m", "hello", db=kai.root / "elsewhere.db"),
    )
    bad_chat, good_chat = (chat_id_of(result) for result in made)
    stored = kai_emulator.state.chats[bad_chat].messages
    stored.append(
        {
            "id": "bad-message",
            "role": "assistant",
            "parts": [
                {
                    "type": "tool-create_bucket",
                    "toolCallId": "call-1",
                    "state": "approval-requested",
                    "input": {"name": "x"},
                    "approval": {"id": ["not", "an", "id"]},
                }
            ],
            "createdAt": "not a date",
        }
    )
    imported = await kai(*online, "log", "import", "--server")
    assert imported.returncode == 0, imported
    warned = [line for line in imported.stderr.splitlines() if line.startswith("kai: warning:")]
    assert len(warned) == 1 and bad_chat in warned[0] and "bad-message" in warned[0], imported
    assert "approval.id must be str" in warned[0]
    assert f"Imported {len(stored) - 1 + 2} messages from 2 chats" in imported.stdout, imported
    history, found, stats, rebuilt = [
        await kai("history", "--local", "--json-output"),
        await kai("search", "tables", "--json-output"),
        await kai("log", "stats", "--json-output"),
        await kai("log", "rebuild"),
    ]
    for result in (history, found, stats, rebuilt):
        assert result.returncode == 0, result
    assert {c["id"] for c in history.json()["chats"]} == {bad_chat, good_chat}
    assert {h["chat_id"] for h in found.json_lines()} == {bad_chat}
    assert stats.json()["chats"] == 2


def _old_log(path: Path) -> tuple[str, str]:
    """A log holding what older kai versions let in: a bad imported message
    and a damaged frame, in one chat; and a good chat beside it."""
    with EventLog(path) as log:
        good = Recorder(log)
        good.send("list my tables", "tables.sse")
        bad = "bad-chat"
        message = {
            "id": "m-bad",
            "role": "assistant",
            "parts": [
                {"type": "text", "text": 5},
                {
                    "type": "tool-x",
                    "toolCallId": "c1",
                    "toolName": ["x"],
                    "state": {"s": 1},
                    "errorText": 7,
                    "approval": {"id": ["a"], "approved": "no", "reason": {"r": 1}},
                },
            ],
        }
        body = json.dumps({"message": message, "title": "old import"}).encode()
        log.append([LogRecord(bad, "t1", "client", IMPORTED_MESSAGE, body, ts=1.7e9)])
        fine = json.dumps({"message": _message()}).encode()
        log.append([LogRecord(bad, "t2", "client", "user-message", fine, ts=1.7e9 + 1)])
    conn = sqlite3.connect(path)
    with conn:  # a frame that claims two records but holds one body
        conn.execute(
            "INSERT INTO frames (seq, n, chat_id, turn, ts, origin, types, body, sizes) "
            "VALUES ((SELECT max(seq) + 10 FROM frames), 2, ?, 't3', 1.7e9, 'client', "
            "'[\"vote\",\"vote\"]', CAST('{}' AS BLOB), NULL)",
            (bad,),
        )
    conn.close()
    return good.chat_id, bad


def test_the_projections_fold_around_records_they_cannot_read(tmp_path: Path) -> None:
    good, bad = _old_log(tmp_path / "kai.db")
    with EventLog(tmp_path / "kai.db") as log, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert {c.id for c in log.chats()} == {good, bad}
        assert [w for w in caught if issubclass(w.category, SkippedRecordWarning)]
        message = str(caught[0].message)
        assert repr(bad) in message and "cannot be read" in message
        detail = log.get_chat(bad)
        assert detail is not None and [m.id for m in detail.messages] == ["m-bad", "m1"]
        (call,) = detail.tool_calls
        assert call.approval_id == '["a"]' and call.approved is False
        assert call.tool_name == "x" and call.state == '{"s":1}' and call.error_text == "7"
        assert log.search("hello") and log.search("tables")
        assert "# old import" in log.export_markdown(bad)
        assert log.stats().chats == 2
        before = dump_rows(log)
        log.rebuild()
        assert dump_rows(log) == before


@pytest.mark.e2e
async def test_kai_reads_an_old_log_with_records_it_cannot_fold(kai: Kai) -> None:
    good, bad = _old_log(kai.db)
    history = await kai("history", "--local", "--json-output")
    assert history.returncode == 0, history
    assert {c["id"] for c in history.json()["chats"]} == {good, bad}
    warned = [line for line in history.stderr.splitlines() if line.startswith("kai: warning:")]
    assert len(warned) == 1 and bad in warned[0], history
    for args in (
        ("search", "tables"),
        ("log", "stats"),
        ("log", "rebuild"),
        ("log", "export", bad, "--format", "markdown"),
    ):
        result = await kai(*args)
        assert result.returncode == 0, result


@pytest.mark.e2e
async def test_a_log_an_old_import_bricked_says_so_and_forget_repairs_it(
    kai: Kai, tmp_path: Path
) -> None:
    with EventLog(kai.db) as log:
        log.append([LogRecord("ok", "t1", "client", "vote", b"{}")])
    conn = sqlite3.connect(kai.db)
    with conn:  # what `kai log import` of a line with seq 2^63-1 stored before the fix
        conn.execute(
            "INSERT INTO frames (seq, n, chat_id, turn, ts, origin, types, body, sizes) "
            "VALUES (?, 1, 'bricked', 't2', 1.7e9, 'client', '[\"vote\"]', "
            "CAST('{}' AS BLOB), NULL)",
            (2**63 - 1,),
        )
    conn.close()
    good = tmp_path / "good.jsonl"
    good.write_bytes(_line(seq=1, turn="t3"))
    refused = await kai("log", "import", str(good))
    assert refused.returncode == EXIT_CODES["log"], refused
    assert "'bricked'" in refused.stderr and "forget that chat" in refused.stderr, refused
    with EventLog(kai.db) as log, pytest.raises(KaiLogError) as info:
        log.append([LogRecord("ok", "t4", "client", "vote", b"{}")])
    assert info.value.code == "log:no_room"
    forgot = await kai("log", "forget", "bricked", "--yes")
    assert forgot.returncode == 0, forgot
    imported = await kai("log", "import", str(good))
    assert imported.returncode == 0 and "Imported 1 events" in imported.stdout, imported
    with EventLog(kai.db) as log:
        assert log.append([LogRecord("ok", "t5", "client", "vote", b"{}")]) == MAX_SEQ + 2
