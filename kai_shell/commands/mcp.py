"""``kai mcp``: serve Kai to coding agents over the Model Context Protocol."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from ..cli import runtime_of
from ..errors import require_extra, run_trio
from ..runtime import Runtime


@click.command()
@click.option("--http", "use_http", is_flag=True, help="Serve streamable HTTP instead of stdio.")
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port for --http (on 127.0.0.1; 0: any free port).",
)
@click.option(
    "--no-auth", is_flag=True, help="With --http: accept requests without the bearer token."
)
@click.option(
    "--approval-timeout",
    type=click.FloatRange(0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds the user has to answer an approval; then the tool is rejected.",
)
@click.pass_context
def mcp(
    ctx: click.Context, use_http: bool, port: int, no_auth: bool, approval_timeout: float
) -> None:
    """Serve Kai as an MCP server for coding agents (stdio, or --http on loopback).

    Tools: ask_kai, list_chats, get_chat, search_chats, kai_usage. A tool Kai
    wants to run is decided by your policies (--policy, --auto-approve)
    first; what is left is asked of the user through the agent (MCP
    elicitation). A client that cannot ask gets the tool rejected.
    """
    require_extra("mcp", "kai mcp")
    runtime = runtime_of(ctx)
    _ = runtime.plugins  # a bad policy file stops us before anything is served
    runtime.require_token()
    run_trio(ctx, _serve, runtime, use_http, port, no_auth, approval_timeout)


async def _serve(
    runtime: Runtime, use_http: bool, port: int, no_auth: bool, approval_timeout: float
) -> None:
    import trio

    from ..mcp.stdio import serve_stdio
    from ..mcp.tools import KaiTools, build_server

    async with runtime.client() as client:
        server = build_server(KaiTools(runtime, client, approval_timeout))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_sigterm, nursery.cancel_scope)
            if use_http:
                await _serve_http(server, port, no_auth)
            else:
                await serve_stdio(server)  # returns at EOF on stdin
            nursery.cancel_scope.cancel()


async def _serve_http(server: Any, port: int, no_auth: bool) -> None:
    import trio

    from ..mcp.http import BearerAuth, new_token, serve_http

    app: Any = server.streamable_http_app()
    token = None if no_auth else new_token()
    if token is not None:
        app = BearerAuth(app, token)
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                lambda task_status: serve_http(
                    app, host="127.0.0.1", port=port, shutdown=stop, task_status=task_status
                )
            )
            auth = f"; bearer token: {token}" if token else " (no auth: --no-auth)"
            print(f"kai mcp: listening on {bound}/mcp{auth}", file=sys.stderr, flush=True)
            await trio.sleep_forever()
    finally:
        stop.set()


async def _stop_on_sigterm(scope: Any) -> None:
    """SIGTERM ends the server like EOF does: what was logged stays logged."""
    import trio

    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
