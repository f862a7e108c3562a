"""The event log under faults, in process: disk full, read-only, corrupt.

The rule the client follows (``docs/reliability.md``): a log that fails
*before* a request leaves stops the request (``KaiLogError``, nothing sent);
a log that fails *after* it (mid-stream, or recording a vote) is reported
once (``on_log_error``, else a ``LogFailedWarning``), logging stops for the
client, and the answer keeps reaching the user. What was logged before the
failure is never damaged: the file passes ``integrity_check`` and every
earlier record reads back unchanged.

A full disk is simulated with SQLite's ``max_page_count`` on the log's
writing connection (the subprocess tests in ``test_reliability_processes``
use ``RLIMIT_FSIZE`` on a real ``kai chat``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from kai_core.client import LogFailedWarning
from kai_core.events import Event, FinishEvent, TextEvent
from kai_core.exceptions import KaiLogError
from kai_core.log import EventLog, LogRecord, StoredEvent
from kai_core.testing import Say

from .reliability_support import (
    connected,
    integrity_ok,
    normalised,
    requests_to,
    server_payloads,
)

pytestmark = pytest.mark.reliability

WORDS = [f"word{n} " for n in range(400)]


def _long(text: str) -> list[Say]:
    return [Say(*WORDS)]


def _fill_up(log: EventLog, spare_pages: int) -> None:
    """Let the log grow by only ``spare_pages`` more pages: then it is "full"."""
    conn = log._writer  # the one connection that appends
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + spare_pages}")


def _snapshot(log: EventLog) -> list[StoredEvent]:
    return log.events()


async def test_disk_full_mid_stream_the_answer_still_arrives(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    log = EventLog(path)
    failures: list[KaiLogError] = []
    async with connected("assistant", log=log, on_log_error=failures.append) as (emu, client):
        emu.script(_long, trigger="long")
        earlier, _ = await client.chat("hello")
        before = _snapshot(log)
        _fill_up(log, spare_pages=3)
        chat_id = client.new_chat_id()
        got: list[Event] = []
        async for event in client.send_message(chat_id, "long"):
            got.append(event)
        # The whole answer reached the caller.
        assert "".join(e.text for e in got if isinstance(e, TextEvent)) == "".join(WORDS)
        assert isinstance(got[-1], FinishEvent)
        # The failure was reported once; logging is off for this client.
        assert len(failures) == 1
        assert failures[0].code in ("log:io", "log:error")
        assert "full" in str(failures[0])
        assert client.log is None and client.log_error is failures[0]
        # A vote now is not an error either.
        vote = await client.upvote(earlier, "m1")
        assert vote.type == "up"
        assert len(failures) == 1
    # Nothing logged before was damaged; the failing chat's log is a clean prefix.
    integrity_ok(path)
    after = EventLog(path)
    assert [e for e in after.events() if e.seq <= before[-1].seq] == before
    logged = normalised(after.replay_events(chat_id))
    assert 0 < len(logged) < len(got)
    assert logged == normalised(got)[: len(logged)]
    assert server_payloads(after, chat_id)  # some chunks made it before the disk filled
    # The next run works (space freed: a fresh EventLog has no page limit).
    async with connected("assistant", log=after) as (_emu, client):
        chat_id, text = await client.chat("hello")
        assert text
    assert normalised(after.replay_events(chat_id))[-1]["type"] == "finish"
    integrity_ok(path)


async def test_disk_full_warns_once_without_a_handler(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (emu, client):
        emu.script(_long, trigger="long")
        await client.chat("hello")
        _fill_up(log, spare_pages=2)
        with pytest.warns(LogFailedWarning, match="event log is off") as warned:
            _, text = await client.chat("long")
        assert text == "".join(WORDS)
        assert len(warned) == 1


async def test_a_log_that_cannot_take_the_question_stops_it_before_it_is_sent(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with connected("assistant", log=log) as (emu, client):
        await client.chat("hello")
        before = _snapshot(log)
        _fill_up(log, spare_pages=0)
        # Use up the free space of the current pages: the next insert needs a new page.
        with pytest.raises(KaiLogError):
            for n in range(10_000):
                _filler(log, n)
        posts = requests_to(emu, "POST", "/api/chat")
        with pytest.raises(KaiLogError) as info:
            await client.chat("hello again")
        assert "full" in str(info.value)
        assert requests_to(emu, "POST", "/api/chat") == posts  # nothing was sent
    integrity_ok(tmp_path / "kai.db")
    assert [e for e in EventLog(tmp_path / "kai.db").events() if e.seq <= before[-1].seq] == before


def _filler(log: EventLog, n: int) -> None:
    log.append([LogRecord(chat_id="filler", turn=f"t{n}", origin="client", type="x", body=b"{}")])


def _digest(path: Path, *, skip_counters: bool = False) -> str:
    data = path.read_bytes()
    if skip_counters:  # the file change counter (24-27) and version-valid-for (92-95)
        data = data[:24] + data[28:92] + data[96:]
    return hashlib.sha256(data).hexdigest()


async def test_a_read_only_log_is_a_clear_error_and_stays_untouched(tmp_path: Path) -> None:
    path = tmp_path / "kai.db"
    log = EventLog(path)
    async with connected("assistant", log=log) as (_emu, client):
        await client.chat("hello")
    log.close()
    os.chmod(path, stat.S_IRUSR)
    digest = _digest(path)
    with pytest.raises(KaiLogError) as info:
        EventLog(path)
    assert info.value.code == "log:read_only"
    assert "read-only" in str(info.value)
    assert _digest(path) == digest


@pytest.mark.parametrize("damage", ["garbage", "zeroed-header", "truncated"])
async def test_a_corrupt_log_is_a_clear_error_and_stays_untouched(
    damage: str, tmp_path: Path
) -> None:
    path = tmp_path / "kai.db"
    log = EventLog(path)
    async with connected("assistant", log=log) as (_emu, client):
        await client.chat("hello")
    log.close()
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "zeroed-header":
        path.write_bytes(b"\0" * 100 + data[100:])
    else:
        path.write_bytes(data[: len(data) // 3])
    digest = _digest(path)
    with pytest.raises(KaiLogError) as info:
        opened = EventLog(path)
        opened.events()  # a truncated file may open; reading it must fail cleanly
        opened.append([])
        opened.refresh()
    assert info.value.code == "log:corrupt", info.value
    assert "corrupt" in str(info.value)
    assert _digest(path) == digest


async def test_a_log_damaged_past_its_header_refuses_the_question_and_stays_as_it_was(
    tmp_path: Path,
) -> None:
    # A valid header, a damaged last page: the log opens, the first append
    # fails (log:corrupt), so the message is not sent; the file is not touched.
    path = tmp_path / "kai.db"
    log = EventLog(path)
    async with connected("assistant", log=log) as (_emu, client):
        for _ in range(5):
            await client.chat("list my tables")
    log.close()
    data = bytearray(path.read_bytes())
    data[-4096:-4032] = b"\xff" * 64
    path.write_bytes(bytes(data))
    digest = _digest(path, skip_counters=True)
    damaged = EventLog(path)
    async with connected("assistant", log=damaged) as (emu, client):
        with pytest.raises(KaiLogError) as info:
            await client.chat("hello")
        assert info.value.code == "log:corrupt"
        assert "move it aside" in str(info.value)
        assert requests_to(emu, "POST", "/api/chat") == 0
    damaged.close()
    # Byte for byte the same, but for the header's change counters (SQLite
    # bumps them when the last connection closes).
    assert _digest(path, skip_counters=True) == digest
