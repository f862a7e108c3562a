"""``kai plugins``: the plugins and the hooks they implement."""

from __future__ import annotations

import json

import click

from ..cli import runtime_of


@click.command()
@click.option("--hook", help="Only plugins implementing this hook.")
@click.option("--json-output", is_flag=True, help="Output as JSON.")
@click.pass_context
def plugins(ctx: click.Context, hook: str | None, json_output: bool) -> None:
    """List plugins and the hooks they implement."""
    runtime = runtime_of(ctx)
    rows = runtime.plugins.listing()
    if hook:
        rows = [row for row in rows if hook in row["hooks"]]
    if json_output:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("No plugins.")
    for row in rows:
        click.echo(f"{row['name']}: {', '.join(row['hooks'])}")
