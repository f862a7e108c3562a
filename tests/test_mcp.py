"""``kai mcp`` driven by the ``mcp`` SDK's own client, as a real process over
stdio (and once over HTTP), against the emulator on both backends."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import trio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from kai_core.log import EventLog
from kai_core.testing import Emulator

from .cli_common import KAI, TOKEN, Kai, client_records

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["agent", "assistant"])
def kai_emulator_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"token": TOKEN, "backend": request.param}


def server_params(kai: Kai, emulator: Emulator, *extra: str) -> StdioServerParameters:
    """``kai mcp`` against ``emulator``, with this test's log and home."""
    return StdioServerParameters(
        command=KAI,
        args=["--db", str(kai.db), *kai.online(emulator), *extra, "mcp"],
        env=kai.env(),
        cwd=str(kai.cwd),
    )


Answer = types.ElicitResult | None


def answering(reply: Answer, seen: list[types.ElicitRequestParams]) -> Any:
    """An elicitation callback that records the question and gives ``reply`` (None: never answers)."""

    async def callback(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.append(params)
        if reply is None:
            await trio.sleep_forever()
        assert reply is not None
        return reply

    return callback


@asynccontextmanager
async def connected(
    kai: Kai,
    emulator: Emulator,
    *options: str,
    mcp_args: tuple[str, ...] = (),
    elicit: Any = None,
    client_info: types.Implementation | None = None,
    mode: str = "legacy",
) -> AsyncIterator[Client]:
    """The SDK's client on ``kai [options] mcp [mcp_args]`` over stdio.

    The server's stderr goes to a file under the test's folder, which the
    ``kai`` fixture scans for the token; it must hold no traceback either.
    """
    params = server_params(kai, emulator, *options)
    params.args.extend(mcp_args)
    stderr = kai.root / f"mcp-stderr-{len(list(kai.root.glob('mcp-stderr-*')))}.log"
    with trio.fail_after(60), stderr.open("w") as errlog:
        async with Client(
            stdio_client(params, errlog=errlog),
            mode=mode,  # type: ignore[arg-type]
            elicitation_callback=elicit,
            client_info=client_info,
        ) as client:
            yield client
    assert "Traceback" not in stderr.read_text()


async def ask(client: Client, message: str, **arguments: Any) -> tuple[dict[str, Any], list[str]]:
    """Call ask_kai; return its structured result and the progress messages."""
    progress: list[str] = []

    async def on_progress(_p: float, _total: float | None, message: str | None) -> None:
        progress.append(message or "")

    result = await client.call_tool(
        "ask_kai", {"message": message, **arguments}, progress_callback=on_progress
    )
    assert not result.is_error, result
    assert result.structured_content is not None
    return result.structured_content, progress


def logged_text(db: Path, chat_id: str) -> set[str]:
    """The user messages the log holds for ``chat_id``."""
    with EventLog(db) as log:
        chat = log.get_chat(chat_id)
    assert chat is not None
    return {m.text for m in chat.messages if m.role == "user"}


async def test_tools_are_listed_with_schemas_and_annotations(
    kai: Kai, kai_emulator: Emulator
) -> None:
    async with connected(kai, kai_emulator) as client:
        listed = await client.list_tools()
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == {"ask_kai", "list_chats", "get_chat", "search_chats", "kai_usage"}
    ask_kai = tools["ask_kai"]
    assert ask_kai.input_schema["required"] == ["message"]
    assert set(ask_kai.input_schema["properties"]) == {"message", "chat_id"}
    assert ask_kai.annotations is not None and ask_kai.annotations.read_only_hint is False
    assert ask_kai.output_schema is not None
    for name in ("list_chats", "get_chat", "search_chats", "kai_usage"):
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is True, name
        assert tools[name].description, name
    assert tools["get_chat"].input_schema["required"] == ["chat_id"]


async def test_plain_question_and_a_read_only_tool(kai: Kai, kai_emulator: Emulator) -> None:
    async with connected(kai, kai_emulator) as client:
        hello, said = await ask(client, "hello")
        tables, progress = await ask(client, "list my tables", chat_id=hello["chat_id"])
    assert "Kai" in hello["answer"]
    assert said == ["Kai is answering"]
    assert hello["tools"] == [] and hello["error"] is None
    assert tables["chat_id"] == hello["chat_id"]
    assert "tables" in tables["answer"]
    (run,) = tables["tools"]
    assert run["name"] == "list_tables" and run["status"] == "done"
    assert "tool list_tables done" in progress
    # Every chat through kai mcp is in the log like any other.
    assert logged_text(kai.db, hello["chat_id"]) >= {"hello", "list my tables"}


YES = types.ElicitResult(action="accept", content={"approve": True, "reason": "fine"})


def decision_of(kai: Kai, chat_id: str) -> dict[str, Any]:
    (decision,) = client_records(kai.db, "approval", chat_id)
    return decision


async def test_a_write_tool_approved_through_elicitation(kai: Kai, kai_emulator: Emulator) -> None:
    seen: list[types.ElicitRequestParams] = []
    client_info = types.Implementation(name="test-agent", version="1")
    async with connected(
        kai, kai_emulator, elicit=answering(YES, seen), client_info=client_info
    ) as client:
        result, progress = await ask(client, "create a bucket called b1")
    (question,) = seen
    assert isinstance(question, types.ElicitRequestFormParams)
    assert "create_bucket" in question.message and '"name": "b1"' in question.message
    assert set(question.requested_schema["properties"]) == {"approve", "reason"}
    assert question.requested_schema["required"] == ["approve"]
    assert "in.c-b1" in kai_emulator.state.buckets
    (run,) = result["tools"]
    assert run["name"] == "create_bucket" and run["status"] == "done"
    assert "tool create_bucket approved by user via MCP client test-agent" in progress
    decision = decision_of(kai, result["chat_id"])
    assert decision["approved"] is True
    assert decision["decided_by"] == "user via MCP client test-agent"
    assert decision["reason"] == "fine"


@pytest.mark.parametrize(
    ("reply", "extra", "reason", "decided_by"),
    [
        (
            types.ElicitResult(action="accept", content={"approve": False, "reason": "not now"}),
            (),
            "not now",
            "user via MCP client mcp",
        ),
        (
            types.ElicitResult(action="decline"),
            (),
            "the user declined the approval",
            "user via MCP client mcp",
        ),
        (
            types.ElicitResult(action="cancel"),
            (),
            "the user cancelled the approval",
            "user via MCP client mcp",
        ),
        (
            None,  # the user never answers
            ("--approval-timeout", "0.5"),
            "no answer from the user within 0.5 s",
            "timeout (MCP client mcp)",
        ),
    ],
    ids=["said-no", "declined", "cancelled", "timed-out"],
)
async def test_anything_but_yes_rejects_the_tool(
    kai: Kai,
    kai_emulator: Emulator,
    reply: Answer,
    extra: tuple[str, ...],
    reason: str,
    decided_by: str,
) -> None:
    seen: list[types.ElicitRequestParams] = []
    async with connected(
        kai, kai_emulator, mcp_args=extra, elicit=answering(reply, seen)
    ) as client:
        result, _ = await ask(client, "create a bucket called b2")
    assert len(seen) == 1
    assert "in.c-b2" not in kai_emulator.state.buckets
    (run,) = result["tools"]
    assert run["status"] == "rejected" and run["output"] == reason
    decision = decision_of(kai, result["chat_id"])
    assert decision["approved"] is False
    assert decision["reason"] == reason
    assert decision["decided_by"] == decided_by


async def test_a_client_without_elicitation_gets_the_tool_rejected(
    kai: Kai, kai_emulator: Emulator
) -> None:
    async with connected(kai, kai_emulator) as client:  # no elicitation callback
        result, _ = await ask(client, "create a bucket called b3")
    assert "in.c-b3" not in kai_emulator.state.buckets
    decision = decision_of(kai, result["chat_id"])
    assert decision["approved"] is False
    assert decision["reason"] == "the MCP client mcp cannot ask its user (no elicitation support)"
    assert decision["decided_by"] == "no-elicitation (MCP client mcp)"


async def test_permission_rules_decide_before_anyone_is_asked(
    kai: Kai, kai_emulator: Emulator
) -> None:
    rules = kai.root / "policy.toml"
    rules.write_text('[permissions]\nallow = ["create_bucket"]\ndeny = ["delete_*"]\n')
    seen: list[types.ElicitRequestParams] = []
    async with connected(
        kai, kai_emulator, "--policy", str(rules), elicit=answering(None, seen)
    ) as client:
        allowed, _ = await ask(client, "create a bucket called b4")
        denied, _ = await ask(client, "delete the bucket in.c-b4")
    assert seen == []  # the rules decided: the user was never asked
    assert "in.c-b4" in kai_emulator.state.buckets  # created, then kept: the delete was denied
    for result, approved, rule in ((allowed, True, "create_bucket"), (denied, False, "delete_*")):
        decision = decision_of(kai, result["chat_id"])
        assert decision["approved"] is approved, decision
        assert decision["decided_by"] == "rule", decision
        assert (decision["who"]["kind"], decision["who"]["rule"]) == ("rule", rule), decision


async def test_search_list_get_chat_and_usage(kai: Kai, kai_emulator: Emulator) -> None:
    async with connected(kai, kai_emulator) as client:
        asked, _ = await ask(client, "list my tables")
        found = await client.call_tool("search_chats", {"query": "tables"})
        local = await client.call_tool("list_chats", {"local": True})
        remote = await client.call_tool("list_chats", {"limit": 5})
        chat = await client.call_tool("get_chat", {"chat_id": asked["chat_id"][:8]})  # a prefix
        bad_id = await client.call_tool("get_chat", {"chat_id": "not-a-chat"})
        usage = await client.call_tool("kai_usage", {})
    for result in (found, local, remote, chat):
        assert not result.is_error, result
    chat_id = asked["chat_id"]
    assert chat_id in {hit["chat_id"] for hit in found.structured_content["result"]}
    assert chat_id in {c["id"] for c in local.structured_content["result"]}
    assert chat_id in {c["id"] for c in remote.structured_content["result"]}
    assert chat.structured_content["id"] == chat_id
    assert [m["role"] for m in chat.structured_content["messages"]] == ["user", "assistant"]
    assert bad_id.is_error
    assert "'not-a-chat' is not a chat id" in bad_id.content[0].text
    if kai_emulator.backend == "assistant":
        assert usage.is_error
        assert (
            "kai-assistant" in usage.content[0].text
            and "no usage endpoint" in usage.content[0].text
        )
    else:
        assert not usage.is_error, usage
        assert set(usage.structured_content) == {"messages_used", "messages_limit", "reset_date"}


class RawServer:
    """``kai mcp`` as a bare process spoken to line by line (JSON-RPC over stdio)."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""

    async def send(self, message: dict[str, Any] | str) -> None:
        line = message if isinstance(message, str) else json.dumps(message)
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line.encode() + b"\n")

    async def receive(self) -> dict[str, Any]:
        """The next message from the server that is a response (notifications skipped)."""
        assert self.process.stdout is not None
        while True:
            while b"\n" not in self.buffer:
                data = await self.process.stdout.receive_some()
                assert data, "kai mcp closed stdout"
                self.buffer += data
            line, _, self.buffer = self.buffer.partition(b"\n")
            message: dict[str, Any] = json.loads(line)
            if "id" in message:
                return message

    async def request(self, id: int, method: str, params: dict[str, Any] | None = None) -> Any:
        await self.send({"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}})
        return await self.receive()

    async def initialize(self, capabilities: dict[str, Any] | None = None) -> None:
        reply = await self.request(
            0,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": capabilities or {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        )
        assert reply["result"]["serverInfo"]["name"] == "kai"
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def exit_code(self) -> tuple[int, str]:
        assert self.process.stderr is not None
        errors = b""
        while data := await self.process.stderr.receive_some():
            errors += data
        return await self.process.wait(), errors.decode()


@asynccontextmanager
async def kai_mcp_process(kai: Kai, emulator: Emulator, *extra: str) -> AsyncIterator[trio.Process]:
    """``kai mcp *extra`` as a bare process with pipes; killed if still running at the end."""
    params = server_params(kai, emulator)
    process = await trio.lowlevel.open_process(
        [params.command, *params.args, *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=params.env,
        cwd=params.cwd,
    )
    try:
        with trio.fail_after(60):
            yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@asynccontextmanager
async def raw_server(kai: Kai, emulator: Emulator) -> AsyncIterator[RawServer]:
    async with kai_mcp_process(kai, emulator) as process:
        yield RawServer(process)


async def test_malformed_requests_get_errors_not_a_crash(kai: Kai, kai_emulator: Emulator) -> None:
    async with raw_server(kai, kai_emulator) as server:
        await server.initialize()
        await server.send("this is not JSON {")
        no_method = await server.request(1, "no/such/method")
        no_message = await server.request(2, "tools/call", {"name": "ask_kai", "arguments": {}})
        no_tool = await server.request(3, "tools/call", {"name": "drop_everything"})
        alive = await server.request(4, "ping")
        assert server.process.stdin is not None
        await server.process.stdin.aclose()  # EOF: the server ends cleanly
        code, errors = await server.exit_code()
    assert no_method["error"]["code"] == -32601
    assert no_message["result"]["isError"] is True
    assert "message" in no_message["result"]["content"][0]["text"]
    assert no_tool.get("error") or no_tool["result"]["isError"]
    assert alive == {"jsonrpc": "2.0", "id": 4, "result": {}}
    assert code == 0, errors
    assert "Traceback" not in errors


async def test_sigterm_mid_answer_stops_cleanly_and_keeps_the_log(
    kai: Kai, kai_emulator: Emulator
) -> None:
    async with raw_server(kai, kai_emulator) as server:
        await server.initialize({"elicitation": {"form": {}}})
        await server.send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {
                    "name": "ask_kai",
                    "arguments": {"message": "create a bucket called b9"},
                },
            }
        )
        question = await server.receive()  # the approval question: the answer is mid-way
        assert question["method"] == "elicitation/create"
        server.process.send_signal(signal.SIGTERM)
        code, errors = await server.exit_code()
    assert code == 0, errors
    assert "Traceback" not in errors and TOKEN not in errors
    with EventLog(kai.db) as log:
        (chat,) = log.chats()
        detail = log.get_chat(chat.id)
    assert detail is not None
    assert [m.text for m in detail.messages if m.role == "user"] == ["create a bucket called b9"]
    assert [t.tool_name for t in detail.tool_calls] == ["create_bucket"]
    assert "in.c-b9" not in kai_emulator.state.buckets


async def test_over_http_with_the_bearer_token(kai: Kai, kai_emulator: Emulator) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with kai_mcp_process(kai, kai_emulator, "--http", "--port", "0") as process:
        assert process.stderr is not None
        banner = b""
        while b"bearer token: " not in banner or not banner.endswith(b"\n"):
            data = await process.stderr.receive_some()
            assert data, f"kai mcp --http exited: {banner!r}"
            banner += data
        match = re.search(
            rb"listening on (http://127\.0\.0\.1:\d+/mcp); bearer token: (\S+)", banner
        )
        assert match, banner
        url, token = match.group(1).decode(), match.group(2).decode()
        async with httpx2.AsyncClient() as plain:
            refused = await plain.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            wrong = await plain.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Authorization": "Bearer not-the-token"},
            )
        assert refused.status_code == 401 and wrong.status_code == 401
        seen: list[types.ElicitRequestParams] = []
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            async with Client(
                streamable_http_client(url, http_client=http),
                mode="legacy",
                elicitation_callback=answering(YES, seen),
            ) as client:
                result, _ = await ask(client, "create a bucket called h1")
        assert len(seen) == 1
        assert "in.c-h1" in kai_emulator.state.buckets
        assert decision_of(kai, result["chat_id"])["approved"] is True
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0


async def test_a_connection_with_no_channel_for_questions_rejects(
    kai: Kai, kai_emulator: Emulator
) -> None:
    # On the 2026-07-28 protocol a tool call has no back-channel for a question
    # in its middle: the client says it can elicit, but the question cannot be
    # sent. The tool is rejected, not run.
    seen: list[types.ElicitRequestParams] = []
    async with connected(kai, kai_emulator, mode="auto", elicit=answering(YES, seen)) as client:
        result, _ = await ask(client, "create a bucket called m1")
    assert seen == []
    assert "in.c-m1" not in kai_emulator.state.buckets
    decision = decision_of(kai, result["chat_id"])
    assert decision["approved"] is False
    assert decision["reason"].startswith("the approval question could not be asked: ")
    assert decision["decided_by"] == "no-elicitation (MCP client mcp)"
