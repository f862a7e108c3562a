"""``kai ping`` and ``kai info``."""

from __future__ import annotations

import click

from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..output import echo_json

json_option = click.option("--json-output", is_flag=True, help="Output as JSON.")


@click.command()
@json_option
@click.pass_context
def ping(ctx: click.Context, json_output: bool) -> None:
    """Check if the Kai server is alive."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        async with runtime.client(with_log=False) as client:
            response = await client.ping()
        if json_output:
            echo_json(response)
        else:
            click.echo(f"Server is alive: {for_terminal(str(response.timestamp))}")

    run_trio(ctx, run)


@click.command()
@json_option
@click.pass_context
def info(ctx: click.Context, json_output: bool) -> None:
    """Get server information."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        async with runtime.client(with_log=False) as client:
            response = await client.info()
            backend = client.backend
        if json_output:
            echo_json(response)
            return
        click.echo(for_terminal(f"App: {response.app_name} v{response.app_version}"))
        click.echo(for_terminal(f"Server: v{response.server_version}"))
        click.echo(f"Uptime: {response.uptime:.1f}s")
        if backend:
            click.echo(f"Backend: {backend}")
        mcps = response.connected_mcp
        if isinstance(mcps, dict):
            mcps = [mcps]
        click.echo(f"Connected MCP servers: {len(mcps)}")
        for mcp in mcps:
            if isinstance(mcp, dict):
                name = mcp.get("name") or mcp.get("url", "unknown")
                click.echo(for_terminal(f"  - {name}: {mcp.get('status', 'unknown')}"))

    run_trio(ctx, run)
