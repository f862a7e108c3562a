"""Search every recorded chat, then replay the best match: the event log, offline.

    python docs/examples/replay_and_search.py --db ~/.local/share/kai/kai.db "tables"
    python docs/examples/replay_and_search.py --db demo.db --record "list my tables" "tables"

Searching and replaying read only the log file: no token, no network. (The
``kai`` command's log is wherever ``kai log path`` says.) With ``--record
MESSAGE`` the example first sends MESSAGE to Kai with logging on, so that
there is something to find; credentials are then taken as in
``streaming_chat.py`` (``STORAGE_API_TOKEN``, ``STORAGE_API_URL``, or
``KAI_BASE_URL`` with ``KAI_SERVICE``).

The replay yields the very events the live stream yielded, decoded from the
recorded wire chunks; ``--speed 2`` replays at twice the recorded pace
instead of at once.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import trio

from kai_core import EventLog, KaiClient


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Search the event log and replay a chat.")
    parser.add_argument("query", help='words to find; "a phrase"; prefix*')
    parser.add_argument("--db", required=True, help="the event log file")
    parser.add_argument("--record", metavar="MESSAGE", help="first send MESSAGE, logged")
    parser.add_argument("--speed", type=float, help="replay pace factor (default: at once)")
    parser.add_argument("--token", default=os.environ.get("STORAGE_API_TOKEN"))
    parser.add_argument("--url", default=os.environ.get("STORAGE_API_URL"))
    parser.add_argument("--base-url", default=os.environ.get("KAI_BASE_URL"))
    parser.add_argument(
        "--backend", choices=["agent", "assistant"], default=os.environ.get("KAI_SERVICE")
    )
    args = parser.parse_args(argv)
    if args.record and (not args.token or not (args.url or args.base_url)):
        parser.error("--record needs STORAGE_API_TOKEN and STORAGE_API_URL (or KAI_BASE_URL)")
    return args


async def record(args: argparse.Namespace, log: EventLog) -> None:
    """Send one message with the log on: every chunk is committed before it is seen."""
    if args.base_url:
        client = KaiClient(
            args.token,
            args.url or args.base_url,
            base_url=args.base_url,
            backend=args.backend,
            log=log,
        )
    else:
        client = await KaiClient.from_storage_api(
            args.token, args.url, service=args.backend, log=log
        )
    async with client:
        chat_id, _answer = await client.chat(args.record)
    print(f"recorded chat {chat_id}")


async def main(args: argparse.Namespace) -> None:
    with EventLog(args.db) as log:
        if args.record:
            await record(args, log)

        # Reads that may touch many rows run in a worker thread, off the trio loop.
        search = functools.partial(log.search, args.query, limit=5, marks=("**", "**"))
        hits = await trio.to_thread.run_sync(search)
        if not hits:
            print(f"no match for {args.query!r}")
            return
        for hit in hits:
            snippet = " ".join(hit.snippet.split())
            print(f"{hit.chat_id}  [{hit.role}]  {hit.title}: {snippet}")

        best = hits[0].chat_id
        print(f"\nreplaying chat {best}:")
        async with log.replay(best, speed=args.speed, max_delay=2.0) as events:
            async for event in events:
                if event.type == "text":
                    print(event.text, end="")
                elif event.type == "tool-call" and event.state == "started":
                    print(f"\n[tool] {event.tool_name}")
                elif event.type == "approval-decision":
                    verdict = "approved" if event.approved else "rejected"
                    print(f"[approval] {event.tool_name} {verdict} by {event.decided_by}")
                elif event.type == "finish":
                    print(f"\n[finish] {event.finish_reason}")


if __name__ == "__main__":
    trio.run(main, parse_args(sys.argv[1:]))
