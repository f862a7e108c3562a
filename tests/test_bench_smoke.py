"""The benchmark scripts keep working (tiny sizes; nothing here asserts speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kai_core.chunks import decode_chunk

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import stream_server  # noqa: E402
from _common import kai_client_venv  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def bench_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KAI_BENCH_CACHE"] = str(tmp_path / "cache")
    return env


def run_script(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_generated_stream_is_a_valid_answer() -> None:
    events = list(stream_server.generate_events(1000))
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [decode_chunk(e[6:-2]) for e in events[:-1]]
    assert len(chunks) == 1000
    types = [c.type for c in chunks]
    assert types[:3] == ["start", "start-step", "text-start"]
    assert types[-4:] == ["text-end", "finish-step", "data-usage", "finish"]
    assert types.count("tool-output-available") == 4  # one tool call per ~200 chunks
    assert types.count("text-delta") > 900
    # Deterministic: the same bytes every time.
    assert events == list(stream_server.generate_events(1000))


async def test_server_streams_the_framing_of_the_sdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAI_BENCH_CACHE", str(tmp_path))
    expected = b"".join(stream_server.generate_events(300))
    streams = [stream_server.load_stream(300, mode) for mode in stream_server.MODES]
    assert b"".join(stream_server.read_pieces(streams[1])) == expected
    server = stream_server.StreamServer(streams)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        for mode in stream_server.MODES:
            response = await client.post(f"/{mode}/300/api/chat", json={"x": 1})
            assert response.status_code == 200
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            assert response.headers["content-type"] == "text/event-stream"
            assert response.content == expected
        missing = await client.post("/large/7/api/chat", content=b"{}")
        assert missing.status_code == 404


def test_bench_stream_runs(bench_env: dict[str, str], tmp_path: Path) -> None:
    consumers = (
        "kai,kai-aio,kai-log,kai-otel,kai-nokeep,kai-log-nokeep,httpx-raw,httpx-sse,"
        "kai-decode,h1-assemble,socket"
    )
    out_json = tmp_path / "out.json"
    out = run_script(
        [
            str(BENCH / "bench_stream.py"),
            "--sizes",
            "300,600",
            "--modes",
            "per-event",
            "--rounds",
            "1",
            "--consumers",
            consumers,
            "--noisy-disk",
            "--emulator-rounds",
            "1",
            "--json",
            str(out_json),
        ],
        bench_env,
    )
    assert "## 600 events, per-event writes" in out
    assert "large writes" not in out
    assert "Memory: peak RSS" in out
    # Issue 16: a disk-heavy neighbour, each round's ratios, the first event.
    assert "With a noisy disk: a second process wrote" in out
    assert "log cost (`kai-log` wall ÷ `kai` wall − 1)" in out
    assert "## Time to first event" in out and "## Issue 16 goals" in out
    report = json.loads(out_json.read_text())
    assert report["noisy_disk"]["fsyncs"] > 0
    assert len(report["first_event_emulator"]["kai-log"]) == 1


@pytest.mark.network
def test_bench_stream_against_kai_client(bench_env: dict[str, str]) -> None:
    if kai_client_venv(create=False) is None:
        pytest.skip("kai-client's venv is not installed (bench/bench_stream.py creates it)")
    out = run_script(
        [
            str(BENCH / "bench_stream.py"),
            "--sizes",
            "300",
            "--rounds",
            "1",
            "--consumers",
            "kai-client,kai",
            "--emulator-rounds",
            "1",
        ],
        bench_env,
    )
    assert "Targets (issues 7 and 17)" in out
    assert "first event, `kai`, emulator" in out


def test_bench_pipeline_runs(bench_env: dict[str, str]) -> None:
    out = run_script(
        [str(BENCH / "bench_pipeline.py"), "--events", "300", "--rounds", "1"], bench_env
    )
    assert "client + log (synchronous=full)" in out


def test_bench_startup_runs(bench_env: dict[str, str]) -> None:
    args = [str(BENCH / "bench_startup.py"), "--runs", "1"]
    if kai_client_venv(create=False) is None:
        args.append("--no-kai-client")  # never install from the network in a test
    out = run_script(args, bench_env)
    assert "kai-shell to prompt" in out
    assert "Start-up figures (issue 16)" in out
    assert "kai-shell to /help done" in out


def test_bench_aio_runs(bench_env: dict[str, str]) -> None:
    out = run_script(
        [
            str(BENCH / "bench_aio.py"),
            "--rounds",
            "1",
            "--cycles",
            "2",
            "--calls",
            "10",
            "--events",
            "2000",
        ],
        bench_env,
    )
    assert "wake-ups for 4 bursts" in out
