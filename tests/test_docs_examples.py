"""The runnable examples of docs/examples/ work: each runs as a script against the emulator.

Each example is started the way a reader starts it (``python docs/examples/X.py``,
credentials in the environment) against the ``kai_emulator`` fixture, and its
output and the emulator's state are checked.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from kai_core.log import EventLog
from kai_core.testing import Emulator

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

pytestmark = pytest.mark.e2e


async def run_example(emulator: Emulator | None, script: str, *args: str) -> str:
    """Run an example to completion; return its stdout (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_API_", "KAI_"))}
    env["KAI_LOAD_PLUGINS"] = ""
    if emulator is not None:
        env.update(
            KAI_BASE_URL=emulator.base_url,
            KAI_SERVICE=emulator.backend,
            STORAGE_API_TOKEN=emulator.token,
            STORAGE_API_URL=emulator.storage_api_url,
        )
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / script), *args],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"{script} exited {done.returncode}\n{out}\n{err}"
    return out


def test_every_example_is_tested() -> None:
    tested = {
        "streaming_chat.py",
        "parallel_chats.py",
        "replay_and_search.py",
        "test_with_emulator.py",
        "kai_client_migration.py",
        "fastapi_app.py",  # tests/test_aio_examples.py
        "streamlit_app.py",  # tests/test_aio_examples.py
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


class TestKaiClientMigration:
    """docs/kai-client.md's table "kai-client code → kai code": every row's example runs."""

    PAGE = EXAMPLES.parent / "kai-client.md"

    def test_every_row_of_the_table_includes_its_example(self) -> None:
        page = self.PAGE.read_text()
        table = page.split("## kai-client code → kai code", 1)[1].split("\n## ", 1)[0]
        rows = re.findall(r"^\| \[(\d+)\]\(#row-\d+\) \|", table, re.M)
        assert rows == [str(n) for n in range(1, len(rows) + 1)] and len(rows) >= 9
        for n in rows:
            assert f'--8<-- "examples/kai_client_migration.py:row{n}"' in page, n

    async def test_the_examples_run_against_kai_agent(self, kai_emulator: Emulator) -> None:
        out = await run_example(kai_emulator, "kai_client_migration.py")
        lines = out.splitlines()
        assert [line.split(":")[0] for line in lines] == [f"row {n}" for n in range(1, 10)]
        assert re.fullmatch(r"row 1: \d+ events, first 'start', last 'finish'", lines[0])
        assert lines[1] == "row 2: 'Hello world', tool calls ['c1']"
        assert lines[2] == "row 3: text text 7 start"
        assert lines[4] == (
            "row 5: KaiNotFoundError not_found:chat; KaiBadRequestError Bad id.; 5 codes mapped"
        )
        assert lines[5] == "row 6: voted up, 1 vote(s) on the chat"
        assert "read-only mode" in lines[6]
        assert lines[7] == "row 8: created in.c-renamed"
        assert lines[8] == 'row 9: {"type": "text", "text": "hi", "state": null}'
        assert set(kai_emulator.state.buckets) == {"in.c-renamed"}


class TestStreamingChat:
    @pytest.fixture(params=["agent", "assistant"])
    def kai_emulator_options(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        return {"backend": request.param}

    async def test_read_only_tool_streams_to_the_end(self, kai_emulator: Emulator) -> None:
        out = await run_example(kai_emulator, "streaming_chat.py", "What tables do I have?")
        assert f"(kai-{kai_emulator.backend})" in out.splitlines()[0]
        assert "[tool] list_tables started" in out
        assert "You have 3 tables" in out
        assert "[approval]" not in out  # a read-only tool never waits
        assert out.rstrip().splitlines()[-1].startswith("[finish] stop")

    async def test_waiting_tool_is_rejected(self, kai_emulator: Emulator) -> None:
        out = await run_example(kai_emulator, "streaming_chat.py", "create a bucket called docs")
        assert "[approval] create_bucket waits" in out
        assert "I did not run create_bucket (streaming_chat.py rejects tools)" in out
        assert kai_emulator.state.buckets == {}

    async def test_waiting_tool_is_approved(self, kai_emulator: Emulator) -> None:
        out = await run_example(
            kai_emulator, "streaming_chat.py", "--approve", "create a bucket called docs"
        )
        assert "Done: bucket in.c-docs was created." in out
        assert list(kai_emulator.state.buckets) == ["in.c-docs"]


async def test_streaming_chat_logs_only_with_db(kai_emulator: Emulator, tmp_path: Path) -> None:
    db = tmp_path / "kai.db"
    out = await run_example(kai_emulator, "streaming_chat.py", "hello")
    assert not db.exists()
    out = await run_example(kai_emulator, "streaming_chat.py", "--db", str(db), "hello")
    match = re.search(rf"chat ({UUID})", out)
    assert match is not None
    with EventLog(db) as log:
        events = log.events(match.group(1))
    assert events[0].type == "user-message" and events[-1].type == "finish"


async def test_parallel_chats_share_one_client(kai_emulator: Emulator) -> None:
    messages = ["hello", "list my tables", "create a bucket called p1", "think"]
    out = await run_example(kai_emulator, "parallel_chats.py", *messages)
    chat_ids = re.findall(rf"chat ({UUID}):", out)
    assert len(set(chat_ids)) == 4 and set(chat_ids) <= set(kai_emulator.state.chats)
    assert "Hello! I'm Kai" in out
    assert "You have 3 tables" in out
    assert "[create_bucket rejected by no-terminal]" in out  # fail closed: nobody to ask
    assert "the answer is 42" in out
    assert kai_emulator.state.buckets == {}


@pytest.mark.kai_emulator(backend="assistant")
async def test_parallel_chats_auto_approve(kai_emulator: Emulator) -> None:
    out = await run_example(
        kai_emulator, "parallel_chats.py", "--auto-approve", "create a bucket called p2"
    )
    assert "[create_bucket approved by auto-approve]" in out
    assert list(kai_emulator.state.buckets) == ["in.c-p2"]


async def test_parallel_chats_timeout_cancels_only_the_slow_chat(kai_emulator: Emulator) -> None:
    # "slow" pauses 0.1 s before each of its 12 pieces: it cannot finish in 0.5 s.
    out = await run_example(kai_emulator, "parallel_chats.py", "--timeout", "0.5", "slow")
    assert "timed out after 0.5 s" in out


async def test_replay_and_search(kai_emulator: Emulator, tmp_path: Path) -> None:
    db = str(tmp_path / "kai.db")
    out = await run_example(
        kai_emulator, "replay_and_search.py", "--db", db, "--record", "list my tables", "tables"
    )
    chat_id = re.search(rf"recorded chat ({UUID})", out)
    assert chat_id is not None
    assert f"{chat_id.group(1)}  [user]  list my tables: list my **tables**" in out
    replayed = out.split("replaying chat", 1)[1]
    assert "[tool] list_tables" in replayed and "You have 3 tables" in replayed
    assert replayed.rstrip().endswith("[finish] stop")

    # Offline: no server, no credentials, the same log.
    offline = await run_example(None, "replay_and_search.py", "--db", db, "customers")
    assert "in.c-main.**customers**" in offline and "You have 3 tables" in offline
    nothing = await run_example(None, "replay_and_search.py", "--db", db, "zebra")
    assert "no match for 'zebra'" in nothing


async def test_the_example_test_file_passes() -> None:
    """docs/examples/test_with_emulator.py, run by pytest as a user's own suite would be."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_API_", "KAI_"))}
    env["KAI_LOAD_PLUGINS"] = ""
    with trio.fail_after(120):
        done = await trio.run_process(
            [sys.executable, "-m", "pytest", "-q", str(EXAMPLES / "test_with_emulator.py")],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "3 passed" in out
