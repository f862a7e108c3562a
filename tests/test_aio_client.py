"""kai_core.aio: the client under asyncio.run, against the real emulator over loopback.

Every test is a plain function running ``asyncio.run``; the emulator serves
from a trio thread of its own (``tests/aio_support.py``). Nothing here waits
on a clock: the trio side is observed through the log, the connection pool
and ``trio.testing.wait_all_tasks_blocked`` run on the client's own thread.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
import trio.testing

import kai_core.aio
from kai_core import client as trio_client
from kai_core.aio import KaiClient, LoopThread
from kai_core.aio._client import FILLED_IN, public_methods
from kai_core.chunks import decode_chunk
from kai_core.events import Event, TextEvent, ToolApprovalRequestEvent
from kai_core.exceptions import KaiAuthenticationError, KaiNotFoundError
from kai_core.log import EventLog
from kai_core.testing import Pause, Say, Step

from .aio_support import EmulatorThread, emulator_thread


@pytest.fixture(params=["agent", "assistant"])
def emu(request: pytest.FixtureRequest) -> Iterator[EmulatorThread]:
    with emulator_thread(backend=request.param) as running:
        yield running


@pytest.fixture
def agent() -> Iterator[EmulatorThread]:
    with emulator_thread(backend="agent") as running:
        yield running


def open_connections(client: KaiClient) -> list[Any]:
    return list(client.trio_client._http.http._transport._pool.connections)  # type: ignore[attr-defined]


async def trio_settled(client: KaiClient) -> None:
    """Return once every task of the client's trio thread is blocked (closes done)."""
    await client._portal.call(trio.testing.wait_all_tasks_blocked)


def slow_answer(deltas: int = 200) -> list[Step]:
    """An answer that streams slowly enough to be stopped half-way."""
    return [Step([Say(*(f"{i} " for i in range(deltas)), pause=0.02)])]


# -- the surface ---------------------------------------------------------------------


@pytest.mark.e2e
def test_import_kai_core_loads_no_asyncio() -> None:
    code = (
        "import sys, kai_core\n"
        "from kai_core import KaiClient, EventLog, Session, TextEvent\n"
        "import kai_core.client, kai_core.session\n"
        "bad = [m for m in ('asyncio', 'kai_core.aio') if m in sys.modules]\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_public_method_has_a_typed_counterpart() -> None:
    # Listed in the class body (so mypy sees it), not only filled in at import.
    assert FILLED_IN == []
    methods = public_methods(trio_client.KaiClient)
    assert {"send_message", "chat", "get_all_history", "submit_approval"} <= set(methods)
    for name in methods:
        ours = inspect.getattr_static(KaiClient, name)
        theirs = inspect.getattr_static(trio_client.KaiClient, name)
        if name in ("close", "aclose", "from_storage_api"):
            continue
        if isinstance(theirs, staticmethod):
            assert ours.__func__ is theirs.__func__, name
            continue
        # The bridge wraps exactly the trio method: same parameters by construction.
        assert ours.__wrapped__ is theirs, name
        ours_sig = inspect.signature(ours)
        theirs_sig = inspect.signature(theirs)
        assert ours_sig.parameters == theirs_sig.parameters, name
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name
        if str(theirs_sig.return_annotation).startswith(("EventStream", "AsyncIterator")):
            assert ours_sig.return_annotation == "kai_core.aio.EventStream", name
    for name in ("__init__", "from_storage_api"):
        ours_sig = inspect.signature(getattr(KaiClient, name))
        theirs_sig = inspect.signature(getattr(trio_client.KaiClient, name))
        assert ours_sig == theirs_sig, name


@pytest.mark.e2e
def test_a_new_trio_method_flows_through_before_it_is_listed() -> None:
    # What happens when kai_core.KaiClient gains a method (as a merge may bring):
    # it is bridged at import, by its kind, and works; the test above then asks
    # for its typed line.
    code = (
        "import asyncio, trio\n"
        "from kai_core import client\n"
        "async def verify(self, n: int, *, twice: bool = False) -> str:\n"
        "    await trio.sleep(0)\n"
        "    return str(n * (2 if twice else 1)) + ':' + trio.lowlevel.current_task().name\n"
        "client.KaiClient.verify = verify\n"
        "from kai_core.aio import _client, KaiClient\n"
        "async def main():\n"
        "    async with KaiClient('a-token-of-test', 'http://127.0.0.1:9') as c:\n"
        "        return await c.verify(21, twice=True)\n"
        "print(_client.FILLED_IN, asyncio.run(main()).split(':')[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["['verify']", "42"]


def test_from_storage_api_discovers_or_fails_without_leaving_a_thread(
    agent: EmulatorThread,
) -> None:
    from kai_core.aio import KaiBackend, KaiError

    emulator = agent.emulator

    async def main() -> None:
        async with await KaiClient.from_storage_api(
            emulator.token, emulator.storage_api_url
        ) as client:
            assert client.backend is KaiBackend.AGENT
            assert client.base_url == emulator.base_url
            assert (await client.ping()).timestamp
        with pytest.raises(KaiError) as error:
            await KaiClient.from_storage_api(
                emulator.token, emulator.storage_api_url, service="assistant"
            )
        assert error.value.code == "discovery:service_not_found"
        assert kai_threads() == []

    asyncio.run(main())


def test_kai_client_names_are_importable_from_aio() -> None:
    from kai_core.aio import KaiError, SSEStreamParser, ToolApprovalRequestEvent

    assert ToolApprovalRequestEvent is kai_core.ToolApprovalRequestEvent
    assert KaiError is kai_core.KaiError and SSEStreamParser is kai_core.SSEStreamParser
    assert kai_core.aio.KaiClient is not kai_core.KaiClient
    with pytest.raises(AttributeError):
        kai_core.aio.NoSuchName  # noqa: B018


# -- the same events, exceptions and log ---------------------------------------------


def trio_events(emu: EmulatorThread, text: str) -> list[Event]:
    async def main() -> list[Event]:
        async with trio_client.KaiClient(**emu.client_options()) as client:
            return [e async for e in client.send_message(client.new_chat_id(), text)]

    return trio.run(main)


def test_same_events_as_the_trio_client(emu: EmulatorThread) -> None:
    text = "what tables do i have"

    async def main() -> list[Event]:
        async with KaiClient(**emu.client_options()) as client:
            assert (await client.ping()).timestamp
            return [e async for e in client.send_message(client.new_chat_id(), text)]

    ours = asyncio.run(main())
    theirs = trio_events(emu, text)
    assert [type(e) for e in ours] == [type(e) for e in theirs]
    assert [e.type for e in ours if isinstance(e, TextEvent)]
    assert "".join(e.text for e in ours if isinstance(e, TextEvent)) == "".join(
        e.text for e in theirs if isinstance(e, TextEvent)
    )


def test_same_exceptions() -> None:
    with emulator_thread(backend="agent", token="the-right-token") as emu:
        options = emu.client_options() | {"storage_api_token": "a-wrong-token"}

        async def main() -> None:
            async with KaiClient(**options) as client:
                with pytest.raises(KaiAuthenticationError):
                    await client.get_history()
                with pytest.raises(KaiAuthenticationError):
                    async for _ in client.send_message(client.new_chat_id(), "hello"):
                        pass
                with pytest.raises(KaiAuthenticationError):
                    async with client.stream_message(client.new_chat_id(), "hello"):
                        pass
            async with KaiClient(**emu.client_options()) as client:
                with pytest.raises(KaiNotFoundError):
                    await client.get_chat(client.new_chat_id())

        asyncio.run(main())


def test_every_event_is_logged_before_the_caller_sees_it(
    emu: EmulatorThread, tmp_path: Path
) -> None:
    log = EventLog(tmp_path / "kai.db")

    async def main() -> tuple[str, list[tuple[Event, int]]]:
        seen: list[tuple[Event, int]] = []
        async with KaiClient(**emu.client_options(), log=log) as client:
            chat_id = client.new_chat_id()
            async for event in client.send_message(chat_id, "what tables do i have"):
                logged = [r for r in log.events(chat_id) if r.origin == "server"]
                seen.append((event, len(logged)))
        return chat_id, seen

    chat_id, seen = asyncio.run(main())
    server = [decode_chunk(r.body) for r in log.events(chat_id) if r.origin == "server"]
    assert seen
    for event, logged_then in seen:
        assert event.chunk in server[:logged_then], event


# -- stopping early ------------------------------------------------------------------


def test_cancelling_the_task_closes_the_stream_and_logs_cancelled(
    agent: EmulatorThread, tmp_path: Path
) -> None:
    agent.run(agent.emulator.script, lambda text: slow_answer(), "slowly")
    log = EventLog(tmp_path / "kai.db")

    async def main() -> None:
        async with KaiClient(**agent.client_options(), log=log) as client:
            chat_id = client.new_chat_id()
            got: list[Event] = []
            two = asyncio.Event()

            async def consume() -> None:
                async for event in client.send_message(chat_id, "slowly"):
                    got.append(event)
                    if sum(isinstance(e, TextEvent) for e in got) == 2:
                        two.set()

            task = asyncio.create_task(consume())
            await two.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # By the time CancelledError reached the task, the trio side had closed
            # the response and logged it: no waiting needed here.
            assert open_connections(client) == []
            last = log.events(chat_id)[-1]
            assert last.type == "cancelled"
            assert msgspec.json.decode(last.body) == {"events_delivered": len(got)}
            assert (await client.chat("hello"))[1]  # the client still works

    asyncio.run(main())


def test_the_server_sees_the_close_before_cancelled_error_arrives() -> None:
    # A bare loopback server streaming one event and then nothing: it records the
    # moment the client's end of the connection closes (EOF on its socket).
    frame = b'data: {"type":"text-delta","id":"t","delta":"hi "}\n\n'
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"x-vercel-ai-ui-message-stream: v1\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    start = b'data: {"type":"start"}\n\ndata: {"type":"text-start","id":"t"}\n\n' + frame

    async def main() -> None:
        closed = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + b"%x\r\n%b\r\n" % (len(start), start))
            await writer.drain()
            while await reader.read(65536):  # the request body, then EOF
                pass
            closed.set()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with (
            server,
            KaiClient(
                "a-token-of-test", "http://127.0.0.1:9", base_url=f"http://127.0.0.1:{port}"
            ) as client,
        ):
            got = asyncio.Event()

            async def consume() -> None:
                async for event in client.send_message(client.new_chat_id(), "hi"):
                    if isinstance(event, TextEvent):
                        got.set()

            task = asyncio.create_task(consume())
            await got.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The client closed its socket before the task saw CancelledError: the
            # EOF is already on the server's side (a hang guard, not a clock check).
            async with asyncio.timeout(30):
                await closed.wait()

    asyncio.run(main())


def test_break_out_of_async_for_closes_promptly(agent: EmulatorThread, tmp_path: Path) -> None:
    agent.run(agent.emulator.script, lambda text: slow_answer(), "slowly")
    log = EventLog(tmp_path / "kai.db")

    async def main() -> None:
        async with KaiClient(**agent.client_options(), log=log) as client:
            chat_id = client.new_chat_id()
            async for event in client.send_message(chat_id, "slowly"):
                if isinstance(event, TextEvent):
                    break
            gc.collect()
            await trio_settled(client)
            assert open_connections(client) == []
            last = log.events(chat_id)[-1]
            assert last.type == "cancelled"
            delivered = msgspec.json.decode(last.body)["events_delivered"]
            assert 1 <= delivered < 20
            assert not client.closed

    asyncio.run(main())


def test_leaving_async_with_a_stream_closes_it(agent: EmulatorThread, tmp_path: Path) -> None:
    agent.run(agent.emulator.script, lambda text: slow_answer(), "slowly")
    log = EventLog(tmp_path / "kai.db")

    async def main() -> None:
        async with KaiClient(**agent.client_options(), log=log) as client:
            chat_id = client.new_chat_id()
            async with client.stream_message(chat_id, "slowly") as events:
                assert events.chat_id == chat_id
                async for _event in events:
                    break
            assert open_connections(client) == []
            assert log.events(chat_id)[-1].type == "cancelled"

    asyncio.run(main())


def test_asyncio_timeout_stops_a_stream(agent: EmulatorThread, tmp_path: Path) -> None:
    agent.run(agent.emulator.script, lambda text: [Step([Say("wait"), Pause(3600)])], "stall")
    log = EventLog(tmp_path / "kai.db")

    async def main() -> None:
        async with KaiClient(**agent.client_options(), log=log) as client:
            chat_id = client.new_chat_id()
            got: list[Event] = []
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    async for event in client.send_message(chat_id, "stall"):
                        got.append(event)
            assert got  # the events before the stall arrived
            assert open_connections(client) == []
            assert log.events(chat_id)[-1].type == "cancelled"

    asyncio.run(main())


# -- concurrency, lifetime, loops ------------------------------------------------------


def test_twenty_chats_at_once_each_in_order(agent: EmulatorThread) -> None:
    def numbered(text: str) -> list[Step]:
        n = text.split()[-1]
        return [Step([Say(*(f"{n}:{i} " for i in range(60)))])]

    agent.run(agent.emulator.script, numbered, "count")

    async def chat(client: KaiClient, n: int) -> str:
        pieces = []
        async for event in client.send_message(client.new_chat_id(), f"count {n}"):
            if isinstance(event, TextEvent):
                pieces.append(event.text)
        return "".join(pieces)

    async def main() -> list[str]:
        async with KaiClient(**agent.client_options()) as client:
            return await asyncio.gather(*(chat(client, n) for n in range(20)))

    answers = asyncio.run(main())
    assert answers == ["".join(f"{n}:{i} " for i in range(60)) for n in range(20)]


def test_a_slow_consumer_pauses_the_trio_side(
    agent: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kai_core.aio import _portal

    monkeypatch.setattr(_portal, "HIGH", 8)
    monkeypatch.setattr(_portal, "LOW", 2)
    agent.run(
        agent.emulator.script, lambda text: [Step([Say(*(f"{i} " for i in range(300)))])], "many"
    )

    async def main() -> tuple[str, int]:
        async with KaiClient(**agent.client_options()) as client:
            stream = client.send_message(client.new_chat_id(), "many")
            pieces, most = [], 0
            async for event in stream:
                most = max(most, len(stream._pipe.items))  # type: ignore[union-attr]
                if isinstance(event, TextEvent):
                    pieces.append(event.text)
                await asyncio.sleep(0)  # a consumer slower than the network
            return "".join(pieces), most

    text, most = asyncio.run(main())
    assert text == "".join(f"{i} " for i in range(300))
    assert most <= 8 + 1  # HIGH, and the end of the stream


def kai_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kai-aio")]


def test_async_with_stops_its_thread_every_time(agent: EmulatorThread) -> None:
    before = threading.active_count()

    async def main() -> None:
        for _ in range(100):
            async with KaiClient(**agent.client_options()) as client:
                client.new_chat_id()  # the thread started on entering
                assert len(kai_threads()) == 1
            assert kai_threads() == []

    asyncio.run(main())
    assert kai_threads() == []
    assert threading.active_count() == before


def test_a_client_left_unclosed_ends_its_thread_when_dropped(agent: EmulatorThread) -> None:
    async def main() -> None:
        client = KaiClient(**agent.client_options())
        await client.ping()
        thread = kai_threads()[0]
        del client
        gc.collect()
        await asyncio.to_thread(thread.join, 30)
        assert not thread.is_alive()

    asyncio.run(main())


def test_another_loop_or_after_close_is_a_clear_error(agent: EmulatorThread) -> None:
    client = KaiClient(**agent.client_options())

    async def use() -> None:
        await client.ping()

    asyncio.run(use())
    with pytest.raises(RuntimeError, match="belongs to another event loop"):
        asyncio.run(use())
    client._portal.abandon()

    async def closed() -> None:
        async with KaiClient(**agent.client_options()) as other:
            await other.ping()
        with pytest.raises(RuntimeError, match="is closed"):
            await other.ping()
        with pytest.raises(RuntimeError, match="is closed"):
            async for _ in other.send_message(other.new_chat_id(), "hello"):
                pass

    asyncio.run(closed())
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        client._portal.bind()


def test_inside_an_already_running_loop(agent: EmulatorThread) -> None:
    # A loop that runs before and after, as Jupyter's kernel or uvicorn does.
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()

    async def cell() -> str:
        async with KaiClient(**agent.client_options()) as client:
            return (await client.chat("hello"))[1]

    try:
        for _ in range(2):  # two "cells", one loop
            answer = asyncio.run_coroutine_threadsafe(cell(), loop).result(60)
            assert "Hello" in answer
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(30)
        loop.close()


def test_loop_thread_from_plain_code_keeps_a_stream_open_between_calls(
    agent: EmulatorThread,
) -> None:
    async def connect() -> KaiClient:
        client = KaiClient(**agent.client_options())
        await client.__aenter__()
        return client

    def script(loop: LoopThread, bucket: str) -> list[str]:
        # What a Streamlit script does: plain code, no loop of its own.
        client = loop.run(connect())
        stream = client.send_message(client.new_chat_id(), f"create a bucket called {bucket}")
        types = []
        for event in loop.iterate(stream):
            types.append(event.type)
            if isinstance(event, ToolApprovalRequestEvent):
                loop.run(client.submit_approval(stream.chat_id or "", event.tool_call_id, True))
                break  # "the next script run" reads on, on the same open stream
        types += [event.type for event in loop.iterate(stream)]
        loop.run(client.close())
        return types

    with LoopThread() as loop:
        types = []
        worker = threading.Thread(target=lambda: types.extend(script(loop, "later")))
        worker.start()
        worker.join(60)

        async def inside() -> list[str]:
            return script(loop, "inside")  # plain code called where another loop runs

        assert asyncio.run(inside()) == types
    assert types.count("tool-approval-request") == 1 and types[-1] == "finish"
    assert set(agent.run(lambda: list(agent.emulator.state.buckets))) >= {
        "in.c-later",
        "in.c-inside",
    }
    assert kai_threads() == []


# -- approvals -------------------------------------------------------------------------


def test_v6_approval_stream(tmp_path: Path) -> None:
    with emulator_thread(backend="assistant") as emu:

        async def main() -> None:
            async with KaiClient(**emu.client_options()) as client:
                chat_id = client.new_chat_id()
                pending = None
                async for event in client.send_message(chat_id, "create a bucket called docs"):
                    if isinstance(event, ToolApprovalRequestEvent):
                        pending = event.approval_id
                assert pending is not None
                after = [e async for e in client.approve_tool(chat_id, pending)]
                assert any(e.type == "finish" for e in after)

        asyncio.run(main())
        assert "docs" in str(emu.run(lambda: dict(emu.emulator.state.buckets)))


def test_session_asks_on_the_event_loop(emu: EmulatorThread, tmp_path: Path) -> None:
    from kai_core.aio import Session
    from kai_core.policy import ApprovalDecision, ApprovalRequest

    log = EventLog(tmp_path / "kai.db")
    asked: list[tuple[str, bool]] = []

    async def main() -> list[Event]:
        loop = asyncio.get_running_loop()

        async def ask(request: ApprovalRequest) -> ApprovalDecision:
            asked.append((request.tool_name, asyncio.get_running_loop() is loop))
            await asyncio.sleep(0)  # a real coroutine: a UI would await a click here
            return ApprovalDecision.approve()

        async with KaiClient(**emu.client_options(), log=log) as client:
            session = Session(client, ask=ask)
            events = [e async for e in session.send("create a bucket called asked")]
            assert session.last_answer is not None and session.last_answer.finish_reason
            return events

    events = asyncio.run(main())
    assert asked == [("create_bucket", True)]
    assert any(e.type == "approval-decision" and e.approved for e in events)
    assert "asked" in str(emu.run(lambda: dict(emu.emulator.state.buckets)))
    assert any(r.type == "approval" for r in log.events())


def test_session_answers_a_call_left_pending(tmp_path: Path) -> None:
    from kai_core.aio import Session
    from kai_core.policy import ApprovalDecision, ApprovalRequest

    log = EventLog(tmp_path / "kai.db")

    async def main() -> tuple[list[str], list[Event]]:
        async def ask(request: ApprovalRequest) -> ApprovalDecision:
            await asyncio.Event().wait()  # a user who does not answer
            raise AssertionError("unreachable")

        async with KaiClient(**running.client_options(), log=log) as client:
            session = Session(client, ask=ask)
            async with session.stream("create a bucket called later") as events:
                async for event in events:
                    if event.type == "tool-approval-request":
                        break  # the answer is stopped while the tool waits
            pending = list(session.pending)
            decided = session.decide_pending(pending[0], ApprovalDecision.approve())
            return pending, [e async for e in decided]

    with emulator_thread(backend="assistant") as running:
        pending, events = asyncio.run(main())
        assert "in.c-later" in running.run(lambda: dict(running.emulator.state.buckets))
    assert pending == ["call_000001"]
    assert events[0].type == "approval-decision" and events[0].decided_by == "user"
    assert events[-1].type == "finish"
    assert [r.type for r in log.events() if r.origin == "client"].count("approval") == 1


def test_session_without_ask_rejects(agent: EmulatorThread) -> None:
    from kai_core.aio import Session

    async def main() -> list[Event]:
        async with KaiClient(**agent.client_options()) as client:
            return [e async for e in Session(client).send("create a bucket called never")]

    events = asyncio.run(main())
    decisions = [e for e in events if e.type == "approval-decision"]
    assert decisions and not decisions[0].approved
    assert agent.run(lambda: dict(agent.emulator.state.buckets)) == {}
