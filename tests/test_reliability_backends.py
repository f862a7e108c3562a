"""A client set up for one backend talking to the other: named within seconds, never silent.

* kai-agent taken for kai-assistant (or for a backend not named): the stream
  announces a write tool and waits for an approval this client cannot send.
  After :data:`~kai_core._stream.AGENT_WAIT_CHECK` seconds of nothing, the
  client asks the server's tool list whether kai-agent holds that tool; it
  does, so the stream fails with ``stream:backend_mismatch`` (before: silence
  until the 300 s read timeout, then a network error).
* kai-assistant taken for kai-agent: the approval endpoint answers 404, the
  v6 request follows and gets the decision already made; the tool runs, one
  note says which backend the server is, exit 0 (before: an error line, exit 0).

In process on trio's autojump clock ("within seconds" in virtual time), and
through the real ``kai`` process for the exit codes.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import trio

from kai_core._stream import AGENT_WAIT_CHECK
from kai_core.client import KaiClient
from kai_core.events import ApprovalDecisionEvent, Event, FinishEvent, ToolCallEvent
from kai_core.exceptions import KaiStreamError
from kai_core.log import EventLog
from kai_core.plugins import Plugins
from kai_core.policy import ApprovalDecision, ApprovalRequest
from kai_core.session import Session
from kai_core.testing import Emulator, open_emulator

from .cli_common import TOKEN, Kai, Result
from .raw_server import Conn, Request, client_for, raw_server
from .reliability_support import client_records, requests_to

pytestmark = pytest.mark.reliability


async def _approve(request: ApprovalRequest) -> ApprovalDecision:
    return ApprovalDecision.approve(decided_by="test")


async def _converse(
    emulator: Emulator, backend: str | None, text: str, log: EventLog | None = None
) -> tuple[Session, list[Event], list[str]]:
    """Run one message through a Session; the events and what was reported."""
    reports: list[str] = []
    client = KaiClient(TOKEN, emulator.storage_api_url, emulator.base_url, backend=backend, log=log)
    events: list[Event] = []
    async with client:
        plugins = Plugins(load_entry_points=False, report=reports.append)
        session = Session(client, plugins=plugins, ask=_approve)
        async for event in session.send(text):
            events.append(event)
    return session, events, reports


@pytest.mark.parametrize("backend", ["assistant", None])
async def test_kai_agent_taken_for_another_backend_is_named_within_seconds(
    backend: str | None, autojump_clock: trio.abc.Clock, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with open_emulator(backend="agent", token=TOKEN) as emulator:
        start = trio.current_time()
        with trio.fail_after(AGENT_WAIT_CHECK + 5), pytest.raises(KaiStreamError) as info:
            await _converse(emulator, backend, "create a bucket called z", log)
        took = trio.current_time() - start
        chat_id = next(iter(emulator.state.chats))
    assert info.value.code == "stream:backend_mismatch"
    assert "'create_bucket'" in str(info.value) and "kai-agent" in str(info.value)
    # It waited for the check, not for the read timeout: seconds, not minutes.
    assert AGENT_WAIT_CHECK <= took < AGENT_WAIT_CHECK + 5
    # The events before it arrived (the announced call), the log says why it stopped,
    # and nothing was approved: no approval was sent and no bucket exists.
    assert info.value.events_delivered > 0
    (error,) = client_records(log, chat_id, "stream-error")
    assert error["code"] == "stream:backend_mismatch"
    assert client_records(log, chat_id, "approval") == []
    assert requests_to(emulator, "POST", f"/api/chat/{chat_id}/approval") == 0
    assert "in.c-z" not in emulator.state.buckets


async def test_the_check_also_runs_when_httpx_reads_the_body(
    autojump_clock: trio.abc.Clock,
) -> None:
    # A gzip body is read by httpx, not by our reader; its read cannot be
    # cancelled and resumed, so the check runs beside it.
    async def kai_agent(conn: Conn, request: Request) -> None:
        if request.path == "/api/settings/tools":
            tools = b'{"tools":[{"name":"create_bucket","readOnly":false}]}'
            await conn.simple(200, tools, {"content-type": "application/json"})
            return
        if request.path == "/api/settings/user":
            await conn.simple(200, b"{}", {"content-type": "application/json"})
            return
        gzip = zlib.compressobj(wbits=31)
        await conn.start(headers={"content-encoding": "gzip"})
        for chunk in (
            b'{"type":"start"}',
            b'{"type":"tool-input-available","toolCallId":"c1","toolName":"create_bucket",'
            b'"input":{"name":"z"}}',
        ):
            await conn.piece(gzip.compress(b"data: %s\n\n" % chunk) + gzip.flush(zlib.Z_SYNC_FLUSH))
        await conn.wait_disconnect()  # kai-agent waits for the approval

    async with raw_server(kai_agent) as server, client_for(server) as client:
        stream = client.send_message("c1", "create a bucket called z")
        start = trio.current_time()
        with trio.fail_after(AGENT_WAIT_CHECK + 5), pytest.raises(KaiStreamError) as info:
            async for _ in stream:
                pass
        assert not stream._conn.own  # type: ignore[union-attr]
    assert info.value.code == "stream:backend_mismatch"
    assert trio.current_time() - start >= AGENT_WAIT_CHECK


async def test_a_slow_read_only_tool_on_kai_assistant_is_no_mismatch(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The check asks about the tool: read-only tools never wait, however slow.
    async with open_emulator(backend="assistant", token=TOKEN) as emulator:
        emulator.faults.chunk_delay = 3 * AGENT_WAIT_CHECK
        with trio.fail_after(600):
            _, events, reports = await _converse(emulator, None, "list my tables")
        assert requests_to(emulator, "GET", "/api/settings/tools") == 1  # it did ask
    assert isinstance(events[-1], FinishEvent) and not reports
    assert any(isinstance(e, ToolCallEvent) and e.state == "output-available" for e in events)


async def test_a_caller_slow_to_read_on_is_no_mismatch(autojump_clock: trio.abc.Clock) -> None:
    # The approval request is on its way while the caller dawdles after the tool
    # call: what waits on the socket is read before anything is called silence.
    async with open_emulator(backend="assistant", token=TOKEN) as emulator:
        emulator.faults.chunk_delay = 0.01
        client = KaiClient(TOKEN, emulator.storage_api_url, emulator.base_url)
        events: list[Event] = []
        async with client:
            with trio.fail_after(60):
                async for event in client.send_message(
                    client.new_chat_id(), "create a bucket called z"
                ):
                    events.append(event)
                    if isinstance(event, ToolCallEvent) and event.state == "input-available":
                        await trio.sleep(3 * AGENT_WAIT_CHECK)
    assert [e.type for e in events if e.type == "tool-approval-request"] == [
        "tool-approval-request"
    ]
    assert isinstance(events[-1], FinishEvent)


async def test_kai_assistant_taken_for_kai_agent_runs_the_tool_without_an_error(
    tmp_path: Path,
) -> None:
    log = EventLog(tmp_path / "kai.db")
    async with open_emulator(backend="assistant", token=TOKEN) as emulator:
        with trio.fail_after(30):
            _, events, reports = await _converse(emulator, "agent", "create a bucket called z", log)
        chat_id = next(iter(emulator.state.chats))
        assert requests_to(emulator, "POST", f"/api/chat/{chat_id}/approval") == 1  # 404
        assert "in.c-z" in emulator.state.buckets  # the approved tool ran
    # Asked once; one note naming the backend, no error.
    assert len([e for e in events if isinstance(e, ApprovalDecisionEvent)]) == 1
    assert reports == [
        "note: this server asks for approvals the kai-assistant way; the decision was "
        "sent that way (for this server, use --service assistant, "
        "or KaiClient(backend='assistant'))"
    ]
    assert isinstance(events[-1], FinishEvent)
    assert client_records(log, chat_id, "stream-error") == []


# -- through the real kai process -------------------------------------------------------


async def _create_bucket(kai: Kai, emulator: Emulator, service: str) -> tuple[Result, str]:
    """``kai chat --auto-approve -m "create a bucket called z"`` with ``--service``;
    the run and its one line on stderr."""
    online = ["--token", TOKEN, "--url", emulator.storage_api_url, "--base-url"]
    online += [emulator.base_url, "--service", service]
    result = await kai(*online, "chat", "--auto-approve", "-m", "create a bucket called z")
    (line,) = result.stderr.strip().splitlines()
    return result, line


@pytest.mark.e2e
@pytest.mark.kai_emulator(backend="agent", token=TOKEN)
async def test_kai_chat_names_a_kai_agent_server_taken_for_kai_assistant(
    kai: Kai, kai_emulator: Emulator
) -> None:
    result, line = await _create_bucket(kai, kai_emulator, "assistant")
    assert result.returncode == 3, result  # a configuration to fix
    assert "stream:backend_mismatch" in line and "--service agent" in line
    assert "in.c-z" not in kai_emulator.state.buckets


@pytest.mark.e2e
@pytest.mark.kai_emulator(backend="assistant", token=TOKEN)
async def test_kai_chat_on_kai_assistant_taken_for_kai_agent_exits_0_without_an_error(
    kai: Kai, kai_emulator: Emulator
) -> None:
    result, line = await _create_bucket(kai, kai_emulator, "agent")
    assert result.returncode == 0, result
    # One note, no error (before: "the kai-agent approval endpoint did not take the decision").
    assert line.startswith("kai: note: this server asks for approvals the kai-assistant way")
    assert line.endswith(
        "(for this server, use --service assistant, or KaiClient(backend='assistant'))"
    )
    assert "in.c-z" in kai_emulator.state.buckets
