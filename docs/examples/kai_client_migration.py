"""kai-client code, moved to kai: one function per row of docs/kai-client.md.

    python docs/examples/kai_client_migration.py

Each ``row_*`` function is the kai code of one row of the migration table
(the page includes them from here, so what you read is what runs). Rows that
talk to a server use ``KAI_BASE_URL`` with ``STORAGE_API_TOKEN`` and
``STORAGE_API_URL`` (the emulator of ``kai serve`` will do). Every row
prints one ``row N: ...`` line.
"""

from __future__ import annotations

import json
import os

import trio

# --8<-- [start:imports]
# kai-client: from kai_client import KaiClient, TextEvent, ...
from kai_core import (
    ERROR_CODE_MAP,
    ChatRequest,
    Event,
    KaiBadRequestError,
    KaiClient,
    KaiNotFoundError,
    MessageRequest,
    SSEStreamParser,
    TextEvent,
    TextPart,
    ToolApprovalRequestEvent,
    ToolCallEvent,
    ToolRestrictions,
    UnknownEvent,
    UsageInfo,
    VisibilityType,
    VoteType,
    parse_sse_event,
    raise_for_error_response,
)

# --8<-- [end:imports]


# --8<-- [start:row1]
async def row1_stream(client: KaiClient) -> None:
    chat_id = client.new_chat_id()
    text, kinds = [], []
    async for event in client.send_message(chat_id, "What is Keboola?"):
        kinds.append(event.type)  # one event per wire chunk, as kai-client gave them
        if event.type == "text":
            text.append(event.text)
    print(f"row 1: {len(kinds)} events, first {kinds[0]!r}, last {kinds[-1]!r}")


# --8<-- [end:row1]


# --8<-- [start:row2]
def row2_build_events() -> None:
    parser = SSEStreamParser()
    events: list[Event] = [
        TextEvent(type="text", text="Hello"),
        # camelCase keywords work at run time; a type checker wants snake_case.
        ToolCallEvent(type="tool-call", toolCallId="c1", toolName="t", state="output-available"),  # type: ignore[call-arg]
        TextEvent(type="text", text=" world"),
    ]
    for event in events:
        parser.process_event(event)
    print(f"row 2: {parser.text!r}, tool calls {sorted(parser.tool_calls)}")


# --8<-- [end:row2]


# --8<-- [start:row3]
def row3_parse_sse_event() -> None:
    current = parse_sse_event({"type": "text-delta", "id": "t1", "delta": "Hi"})
    older = parse_sse_event({"type": "text", "text": "Hi"})
    usage = parse_sse_event('data: {"type":"data-usage","data":{"promptTokens":7}}')
    start = parse_sse_event({"type": "start", "messageId": "m1"})
    assert isinstance(start, UnknownEvent)
    assert usage.type == "data-usage"  # narrows: usage is a UsageEvent
    print(f"row 3: {current.type} {older.type} {usage.usage.prompt_tokens} {start.type}")


# --8<-- [end:row3]


# --8<-- [start:row4]
def row4_models() -> None:
    request = ChatRequest(
        id="3f1c6a52-6b1e-4c9f-9d7a-0d4bb2b1a001",
        message=MessageRequest(
            id="3f1c6a52-6b1e-4c9f-9d7a-0d4bb2b1a002",
            role="user",
            parts=[TextPart(type="text", text="Hello")],
        ),
        # kai-client's camelCase works at run time; a type checker wants snake_case.
        selectedChatModel="chat-model",  # type: ignore[call-arg]
        selectedVisibilityType=VisibilityType.PRIVATE,
    )
    wire = request.model_dump(by_alias=True, exclude_none=True)
    again = ChatRequest.model_validate(wire)
    usage = UsageInfo(promptTokens=3, completionTokens=2)  # type: ignore[call-arg]
    print(f"row 4: {sorted(wire)}, {again.message.id[-3:]}, {usage.model_dump_json()}")


# --8<-- [end:row4]


# --8<-- [start:row5]
async def row5_errors(client: KaiClient) -> None:
    try:
        await client.get_chat(client.new_chat_id())
    except KaiNotFoundError as error:
        found = f"{type(error).__name__} {error.code}"
    try:
        raise_for_error_response({"code": "bad_request:api", "message": "Bad id."})
    except KaiBadRequestError as error:
        raised = f"{type(error).__name__} {error.message}"
    print(f"row 5: {found}; {raised}; {len(ERROR_CODE_MAP)} codes mapped")


# --8<-- [end:row5]


# --8<-- [start:row6]
async def row6_vote(client: KaiClient) -> None:
    chat_id, _ = await client.chat("hello")
    answer = (await client.get_chat(chat_id)).messages[-1]
    vote = await client.vote(chat_id, answer.id, VoteType.UP)
    votes = await client.get_votes(chat_id)
    print(f"row 6: voted {vote.type}, {len(votes)} vote(s) on the chat")


# --8<-- [end:row6]


# --8<-- [start:row7]
async def row7_restrictions(client: KaiClient) -> None:
    chat_id = client.new_chat_id()
    errors = []
    async for event in client.send_message(
        chat_id,
        "create a bucket called kept-out",
        branch_id=1234,
        tool_restrictions=ToolRestrictions(read_only_mode=True),
    ):
        if event.type == "tool-output-error":
            errors.append(event.error_text)
    print(f"row 7: {errors[0]}")


# --8<-- [end:row7]


# --8<-- [start:row8]
async def row8_approval(client: KaiClient) -> None:
    chat_id = client.new_chat_id()
    async with client.stream_message(chat_id, "create a bucket called asked") as events:
        async for event in events:
            if isinstance(event, ToolApprovalRequestEvent) and event.transport == "agent":
                await client.submit_approval(
                    chat_id,
                    event.tool_call_id,
                    True,
                    updated_input={"name": "renamed", "stage": "in"},
                )
            elif event.type == "tool-call" and event.state == "output-available":
                print(f"row 8: created {event.output['id']}")


# --8<-- [end:row8]


# --8<-- [start:row9]
def row9_json_lines(event: TextEvent) -> None:
    line = json.dumps(event.model_dump())  # what kai-client's --json-output printed
    print(f"row 9: {line}")


# --8<-- [end:row9]


# --8<-- [start:connect]
async def main() -> None:
    token, url = os.environ["STORAGE_API_TOKEN"], os.environ["STORAGE_API_URL"]
    base_url = os.environ.get("KAI_BASE_URL")
    if base_url:
        client = KaiClient(token, url, base_url=base_url, backend=os.environ.get("KAI_SERVICE"))
    else:
        client = await KaiClient.from_storage_api(token, url)  # kai-agent when listed
    async with client:
        await row1_stream(client)
        row2_build_events()
        row3_parse_sse_event()
        row4_models()
        await row5_errors(client)
        await row6_vote(client)
        await row7_restrictions(client)
        await row8_approval(client)
        row9_json_lines(TextEvent(type="text", text="hi"))


if __name__ == "__main__":
    trio.run(main)  # kai-client: asyncio.run(main())
# --8<-- [end:connect]
