"""Stream one answer from Kai, event by event, with the low-level client.

    python docs/examples/streaming_chat.py "What tables do I have?"
    python docs/examples/streaming_chat.py --approve "create a bucket called b1"

Credentials come from the options or the environment, as for the ``kai``
command: ``--token`` / ``STORAGE_API_TOKEN`` and ``--url`` /
``STORAGE_API_URL`` (the Kai server is discovered through the Storage API),
or ``--base-url`` / ``KAI_BASE_URL`` to talk to a Kai server directly (the
emulator of ``kai serve``, say) with ``--backend`` / ``KAI_SERVICE`` saying
which backend it is. ``--db FILE`` records the chat in an event log;
without it nothing is written anywhere.

A tool that waits for approval is rejected, or approved with ``--approve``.
The two backends are answered differently: on kai-agent the stream stays
open and waits for ``client.submit_approval()``; on kai-assistant the answer
ends, and ``client.answer_approvals()`` sends the decisions and streams the
continuation. (``kai_core.Session`` does all of this for you, with approval
policies; see ``parallel_chats.py``.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import trio

from kai_core import Event, EventLog, EventStream, KaiClient, ToolApprovalRequestEvent


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Stream one answer from Kai.")
    parser.add_argument("message", help="what to ask")
    parser.add_argument("--token", default=os.environ.get("STORAGE_API_TOKEN"))
    parser.add_argument("--url", default=os.environ.get("STORAGE_API_URL"))
    parser.add_argument("--base-url", default=os.environ.get("KAI_BASE_URL"))
    parser.add_argument(
        "--backend", choices=["agent", "assistant"], default=os.environ.get("KAI_SERVICE")
    )
    parser.add_argument("--chat-id", help="continue this chat (default: a new one)")
    parser.add_argument("--db", help="record the chat in this event log file")
    parser.add_argument("--approve", action="store_true", help="approve tools that wait")
    args = parser.parse_args(argv)
    if not args.token or not (args.url or args.base_url):
        parser.error("set STORAGE_API_TOKEN and STORAGE_API_URL (or KAI_BASE_URL)")
    return args


async def connect(args: argparse.Namespace, log: EventLog | None) -> KaiClient:
    """A client for a known server, or one found through the Storage API."""
    if args.base_url:
        return KaiClient(
            args.token,
            args.url or args.base_url,
            base_url=args.base_url,
            backend=args.backend,  # on kai-agent, needed to know which tools wait
            log=log,
        )
    return await KaiClient.from_storage_api(args.token, args.url, service=args.backend, log=log)


def show(event: Event) -> None:
    """Print one event as it arrives."""
    if event.type == "text":
        print(event.text, end="", flush=True)
    elif event.type == "tool-call" and event.state == "started":
        print(f"\n[tool] {event.tool_name} started", flush=True)
    elif event.type == "tool-call" and event.state == "output-available":
        print(f"[tool] {event.tool_name} -> {json.dumps(event.output)[:80]}", flush=True)
    elif event.type == "tool-approval-request":
        print(f"[approval] {event.tool_name} waits: {json.dumps(event.input)}", flush=True)
    elif event.type == "tool-output-error":
        print(f"[tool error] {event.tool_name}: {event.error_text}", flush=True)
    elif event.type == "error":
        print(f"\n[error] {event.message}", flush=True)
    elif event.type == "finish":
        usage = event.usage
        tokens = f", {usage.prompt_tokens} in / {usage.completion_tokens} out" if usage else ""
        print(f"\n[finish] {event.finish_reason}{tokens}", flush=True)


async def main(args: argparse.Namespace) -> None:
    log = EventLog(args.db) if args.db else None  # logging on, or off
    try:
        async with await connect(args, log) as client:
            chat_id = args.chat_id or client.new_chat_id()
            print(f"chat {chat_id} ({client.backend or 'backend not known'})", flush=True)
            stream: EventStream | None = client.stream_message(chat_id, args.message)
            while stream is not None:
                v6_answers: dict[str, tuple[bool, str | None]] = {}
                # The block is the stream's lifetime: leaving it closes the response.
                async with stream as events:
                    async for event in events:
                        show(event)
                        if isinstance(event, ToolApprovalRequestEvent):
                            reason = None if args.approve else "streaming_chat.py rejects tools"
                            if event.transport == "agent":
                                # kai-agent: the stream waits for this answer, then goes on.
                                await client.submit_approval(
                                    chat_id, event.tool_call_id, args.approve, reason=reason
                                )
                            else:
                                v6_answers[event.approval_id] = (args.approve, reason)
                # kai-assistant: the answer ended; answering streams the continuation.
                stream = client.answer_approvals(chat_id, v6_answers) if v6_answers else None
    finally:
        if log is not None:
            log.close()


if __name__ == "__main__":
    trio.run(main, parse_args(sys.argv[1:]))
