"""``kai vote`` and ``kai get-votes``."""

from __future__ import annotations

import json

import click

from kai_core.sanitize import for_terminal

from ..cli import runtime_of
from ..errors import run_trio
from ..ids import ChatId, resolve
from ..output import to_snake


@click.command()
@click.argument("chat_id", type=ChatId)
@click.argument("message_id")
@click.argument("vote_type", type=click.Choice(["up", "down"]))
@click.pass_context
def vote(ctx: click.Context, chat_id: str, message_id: str, vote_type: str) -> None:
    """Vote on a message (up or down)."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        async with runtime.client() as client:
            full_id = await resolve(runtime, chat_id, client)
            result = await client.vote(full_id, message_id, vote_type)
        click.echo(
            for_terminal(f"Voted {getattr(result, 'type', vote_type)} on message {message_id}")
        )

    run_trio(ctx, run)


@click.command("get-votes")
@click.argument("chat_id", type=ChatId)
@click.option("--json-output", is_flag=True, help="Output as JSON.")
@click.pass_context
def get_votes(ctx: click.Context, chat_id: str, json_output: bool) -> None:
    """Get the votes of a chat."""
    runtime = runtime_of(ctx)

    async def run() -> None:
        async with runtime.client(with_log=False) as client:
            votes = await client.get_votes(await resolve(runtime, chat_id, client))
        if json_output:
            click.echo(json.dumps([to_snake(v) for v in votes], default=str))
            return
        if not votes:
            click.echo("No votes found.")
            return
        for v in votes:
            click.echo(for_terminal(f"{v.message_id}: {v.type}"))

    run_trio(ctx, run)
