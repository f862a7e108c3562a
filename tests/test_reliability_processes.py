"""The log under real process faults: ``kai chat`` killed, run side by side, out of disk.

Each test runs the installed ``kai`` binary against an in-process emulator
(kai-assistant) with ``--renderer json``, so every line it prints is one
event. Afterwards the log file must pass ``PRAGMA integrity_check``, hold
every event the process printed (in order, once), and keep working for the
next run.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from kai_core.events import event_to_json
from kai_core.log import EventLog
from kai_core.testing import Emulator, Say, open_emulator

from .reliability_support import (
    KAI,
    SECRET,
    frame_payloads,
    integrity_ok,
    kai_env,
    requests_to,
    server_payloads,
)

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

WORDS = [f"w{n} " for n in range(24)]


def _slowish(text: str) -> list[Say]:
    return [Say(*WORDS, pause=0.03)]


def _args(emulator: Emulator, db: Path, *rest: str) -> list[str]:
    return [
        str(KAI),
        "--base-url",
        emulator.base_url,
        "--url",
        emulator.storage_api_url,
        "--service",
        "assistant",
        "--db",
        str(db),
        "--renderer",
        "json",
        *rest,
    ]


def _events(stdout: bytes) -> list[Any]:
    """The printed events: complete JSON lines (not the ``Chat ID:`` line)."""
    lines = stdout.split(b"\n")[:-1]  # a last line without "\n" was not fully printed
    return [json.loads(line) for line in lines if line.startswith(b"{")]


def _logged(db: Path, chat_id: str) -> list[Any]:
    with EventLog(db) as log:
        return [json.loads(event_to_json(e)) for e in log.replay_events(chat_id)]


async def _run(
    argv: list[str], env: dict[str, str], **options: Any
) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            **options,
        )


async def test_sigkill_at_random_moments_never_loses_a_printed_event(tmp_path: Path) -> None:
    seed = int(os.environ.get("KAI_RELIABILITY_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    db = tmp_path / "kai.db"
    env = kai_env(tmp_path, STORAGE_API_TOKEN=SECRET)
    stages: dict[str, int] = {"before any event": 0, "mid-answer": 0, "after the answer": 0}
    async with open_emulator(backend="assistant", token=SECRET) as emulator:
        emulator.script(_slowish, trigger="slowish")
        total = len(WORDS) + 3  # step-start, the texts, data-usage, finish
        # Kill points spread over the whole run (start-up, request, every part of
        # the answer, its end), each moved by a random number of events and a
        # random delay, so the kill lands anywhere: mid-append included.
        spread = [0, 0, 2, 5, 9, 13, 17, 21, 25, total]
        for run, point in enumerate(spread):
            chat_id = str(uuid.uuid4())
            wait_for = max(0, min(total, point + rng.randint(-2, 2))) if point else 0
            argv = _args(emulator, db, "chat", "--chat-id", chat_id, "-m", "slowish")
            proc = await trio.lowlevel.open_process(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            out = b""
            assert proc.stdout is not None
            with trio.fail_after(30):
                while len(_events(out)) < wait_for:
                    data = await proc.stdout.receive_some()
                    if not data:
                        break
                    out += data
                # Before any event: somewhere in start-up (~0.7 s); else a moment later.
                await trio.sleep(rng.uniform(0.0, 0.8) if wait_for == 0 else rng.uniform(0.0, 0.04))
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                while data := await proc.stdout.receive_some():  # printed before it died
                    out += data
            await proc.stdout.aclose()
            printed = _events(out)
            context = f"seed={seed} run={run} waited for {wait_for} events, printed {len(printed)}"
            integrity_ok(db)
            logged = _logged(db, chat_id)
            assert logged[: len(printed)] == printed, context
            if not printed:
                stages["before any event"] += 1
            elif printed[-1]["type"] == "finish":
                stages["after the answer"] += 1
            else:
                stages["mid-answer"] += 1
        # The next run works, with the same log.
        chat_id = str(uuid.uuid4())
        done = await _run(_args(emulator, db, "chat", "--chat-id", chat_id, "-m", "hello"), env)
        assert done.returncode == 0, done.stderr
        assert _logged(db, chat_id) == _events(done.stdout)
        assert _events(done.stdout)[-1]["type"] == "finish"
    integrity_ok(db)
    print(f"SIGKILL runs (seed {seed}): {stages}")


async def test_several_processes_chat_into_one_log_at_once(tmp_path: Path) -> None:
    db = tmp_path / "kai.db"
    env = kai_env(tmp_path, STORAGE_API_TOKEN=SECRET)
    n = 5
    async with open_emulator(backend="assistant", token=SECRET) as emulator:
        emulator.faults.chunk_delay = 0.01  # answers long enough to overlap
        chats = [str(uuid.uuid4()) for _ in range(n)]
        results: dict[str, subprocess.CompletedProcess[bytes]] = {}

        async def one(chat_id: str, text: str) -> None:
            argv = _args(emulator, db, "chat", "--chat-id", chat_id, "-m", text)
            results[chat_id] = await _run(argv, env)

        async with trio.open_nursery() as nursery:
            for i, chat_id in enumerate(chats):
                nursery.start_soon(one, chat_id, "list my tables" if i % 2 else "think")
        with EventLog(db) as log:
            for chat_id in chats:
                done = results[chat_id]
                assert done.returncode == 0, done.stderr
                assert b"locked" not in done.stderr
                assert b"Traceback" not in done.stderr
                # Each chunk of each answer exactly once, in order; and what was printed.
                assert server_payloads(log, chat_id) == frame_payloads(emulator, chat_id)
                printed = _events(done.stdout)
                assert [json.loads(event_to_json(e)) for e in log.replay_events(chat_id)] == printed
            assert requests_to(emulator, "POST", "/api/chat") == n
    integrity_ok(db)


async def test_disk_full_mid_answer_the_answer_still_reaches_the_user(tmp_path: Path) -> None:
    db = tmp_path / "kai.db"
    env = kai_env(tmp_path, STORAGE_API_TOKEN=SECRET)
    words = [f"w{n} " for n in range(100)]
    async with open_emulator(backend="assistant", token=SECRET) as emulator:
        emulator.script(lambda text: [Say(*words, pause=0.002)], trigger="long")
        first = str(uuid.uuid4())
        done = await _run(_args(emulator, db, "chat", "--chat-id", first, "-m", "hello"), env)
        assert done.returncode == 0, done.stderr
        before = _logged(db, first)

        def small_disk() -> None:
            # Files may not grow past 60 kB: the question and a few reads fit in
            # the write-ahead log, then the disk is "full" (EFBIG).
            resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

        chat_id = str(uuid.uuid4())
        argv = _args(emulator, db, "chat", "--chat-id", chat_id, "-m", "long")
        # Not under coverage (CI follows subprocesses): its data file would hit the limit too.
        env = {k: v for k, v in env.items() if not k.startswith("COVERAGE_")}
        full = await _run(argv, env, preexec_fn=small_disk)
    stderr = full.stderr.decode()
    assert full.returncode in (0, 9), stderr  # the answer arrived; 9 may flag the log
    printed = _events(full.stdout)
    text = "".join(e.get("text", "") for e in printed if e["type"] == "text")
    assert text == "".join(words)  # the whole answer reached the user
    # Reported once (one line naming the log), whatever the front end's format.
    assert sum("event log" in line for line in stderr.splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    integrity_ok(db)
    assert _logged(db, first) == before  # nothing logged earlier was damaged
    logged = _logged(db, chat_id)
    assert 0 < len(logged) < len(printed)
    assert logged == printed[: len(logged)]


async def test_read_only_and_corrupt_logs_stop_before_anything_is_sent(tmp_path: Path) -> None:
    env = kai_env(tmp_path, STORAGE_API_TOKEN=SECRET)
    async with open_emulator(backend="assistant", token=SECRET) as emulator:
        read_only = tmp_path / "ro.db"
        done = await _run(_args(emulator, read_only, "chat", "-m", "hello"), env)
        assert done.returncode == 0
        os.chmod(read_only, stat.S_IRUSR)
        corrupt = tmp_path / "corrupt.db"
        corrupt.write_bytes(b"this is not a database\n" * 100)
        posts = requests_to(emulator, "POST", "/api/chat")
        for db, what in ((read_only, "read-only"), (corrupt, "corrupt")):
            content = db.read_bytes()
            failed = await _run(_args(emulator, db, "chat", "-m", "hello"), env)
            lines = failed.stderr.decode().strip().splitlines()
            assert failed.returncode == 9, failed.stderr
            assert len(lines) == 1 and what in lines[0] and "--db" in lines[0], lines
            assert db.read_bytes() == content
        assert requests_to(emulator, "POST", "/api/chat") == posts
        # --no-log still answers.
        done = await _run(_args(emulator, corrupt, "--no-log", "chat", "-m", "hello"), env)
        assert done.returncode == 0, done.stderr
        assert _events(done.stdout)[-1]["type"] == "finish"
