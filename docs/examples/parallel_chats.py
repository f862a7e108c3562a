"""Several chats at once in a trio app: one client, one nursery, one Session per chat.

    python docs/examples/parallel_chats.py "hello" "list my tables" "create a bucket called b1"
    python docs/examples/parallel_chats.py --auto-approve "create a bucket called b2"
    python docs/examples/parallel_chats.py --timeout 0.5 "slow"

Each message goes to a new chat, in a task of its own; the tasks share one
``KaiClient`` (and its connection pool). Each chat runs under
``trio.fail_after(--timeout)``: one that takes too long is cancelled (its
stream is closed at once) and reported, and the others go on.

Tools that wait for approval go through the session's approval policies.
This app has no one to ask, so a tool no policy approves is rejected (kai
fails closed); ``--auto-approve`` registers kai's auto-approve policy.
Credentials: as in ``streaming_chat.py`` (``STORAGE_API_TOKEN``,
``STORAGE_API_URL``, or ``KAI_BASE_URL`` with ``KAI_SERVICE``).
"""

from __future__ import annotations

import argparse
import os
import sys

import trio

from kai_core import KaiClient, KaiError, Plugins, Session


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Several chats with Kai at once.")
    parser.add_argument("messages", nargs="+", help="one chat per message")
    parser.add_argument("--token", default=os.environ.get("STORAGE_API_TOKEN"))
    parser.add_argument("--url", default=os.environ.get("STORAGE_API_URL"))
    parser.add_argument("--base-url", default=os.environ.get("KAI_BASE_URL"))
    parser.add_argument(
        "--backend", choices=["agent", "assistant"], default=os.environ.get("KAI_SERVICE")
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per chat")
    parser.add_argument("--auto-approve", action="store_true", help="approve waiting tools")
    args = parser.parse_args(argv)
    if not args.token or not (args.url or args.base_url):
        parser.error("set STORAGE_API_TOKEN and STORAGE_API_URL (or KAI_BASE_URL)")
    return args


async def connect(args: argparse.Namespace) -> KaiClient:
    if args.base_url:
        return KaiClient(
            args.token, args.url or args.base_url, base_url=args.base_url, backend=args.backend
        )
    return await KaiClient.from_storage_api(args.token, args.url, service=args.backend)


def approval_plugins(auto_approve: bool) -> Plugins:
    """The plugins the sessions consult: no installed ones, maybe auto-approve."""
    plugins = Plugins(load_entry_points=False)
    if auto_approve:
        from kai_plugins.policies import AutoApprove

        plugins.register(AutoApprove(), name="auto-approve")
    return plugins


async def converse(session: Session, text: str, pieces: list[str]) -> None:
    """Send ``text``; collect the answer's text, and the approval decisions, as they arrive."""
    async with session.stream(text) as events:
        async for event in events:
            if event.type == "text":
                pieces.append(event.text)
            elif event.type == "approval-decision":
                verdict = "approved" if event.approved else "rejected"
                pieces.append(f"[{event.tool_name} {verdict} by {event.decided_by}] ")


async def main(args: argparse.Namespace) -> None:
    results: dict[str, str] = {}
    plugins = approval_plugins(args.auto_approve)

    async with await connect(args) as client:

        async def chat(text: str) -> None:
            # One task per chat; the deadline covers the whole conversation.
            session = Session(client, plugins=plugins)  # ask=None: nobody to ask, fail closed
            pieces: list[str] = []
            try:
                with trio.fail_after(args.timeout):
                    await converse(session, text, pieces)
            except trio.TooSlowError:
                outcome = (
                    f"timed out after {args.timeout:g} s ({len(pieces)} pieces of text had arrived)"
                )
            except KaiError as exc:
                outcome = f"failed: {exc}"
            else:
                outcome = "".join(pieces)
            results[text] = f"chat {session.chat_id}: {outcome}"

        # The nursery waits for every chat; an unexpected error in one cancels the rest.
        async with trio.open_nursery() as nursery:
            for text in args.messages:
                nursery.start_soon(chat, text)

    for text in args.messages:
        print(f"> {text}\n  {results[text]}")


if __name__ == "__main__":
    trio.run(main, parse_args(sys.argv[1:]))
