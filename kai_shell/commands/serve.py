"""``kai serve``: run the emulated Kai backend standalone, until Ctrl-C."""

from __future__ import annotations

import signal
import sys

import click
import trio

from ..errors import require_extra


@click.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback)."
)
@click.option(
    "--port",
    default=3000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port). 3000 is kai-client's default base URL.",
)
@click.option("--token", help="Accept only this Storage API token (default: any non-empty token).")
@click.option(
    "--backend",
    type=click.Choice(["agent", "assistant"]),
    default="agent",
    show_default=True,
    help="Play kai-agent (approvals by POST, stream waits) or kai-assistant (AI SDK v6 flow).",
)
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not loopback.")
@click.option("--drop-after", type=click.IntRange(0), help="Cut every stream after N chunks.")
@click.option("--malformed-at", type=click.IntRange(0), help="Put a malformed chunk at position N.")
@click.option(
    "--chunk-delay", type=click.FloatRange(0), default=0.0, help="Seconds before each chunk."
)
@click.option(
    "--keepalive", type=click.FloatRange(0, min_open=True), help="Keep-alive comment interval (s)."
)
@click.option(
    "--rate-limit", type=click.IntRange(0), default=0, help="Answer the next K requests 429."
)
@click.option(
    "--retry-after",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Retry-After of a 429.",
)
@click.option(
    "--fail", "fail_next", type=click.IntRange(0), default=0, help="Answer the next K requests 503."
)
@click.option(
    "--fault-scope",
    type=click.Choice(["chat", "all"]),
    default="chat",
    show_default=True,
    help="Requests hit by --rate-limit/--fail: POST /api/chat only, or all.",
)
@click.option("--access-log", is_flag=True, help="Log every request to stderr.")
def serve(
    host: str,
    port: int,
    token: str | None,
    backend: str,
    allow_remote: bool,
    drop_after: int | None,
    malformed_at: int | None,
    chunk_delay: float,
    keepalive: float | None,
    rate_limit: int,
    retry_after: int,
    fail_next: int,
    fault_scope: str,
    access_log: bool,
) -> None:
    """Run the emulated Kai backend (scripted answers, optional faults) on loopback.

    \b
    Try, in another terminal:
      STORAGE_API_URL=http://127.0.0.1:3000 STORAGE_API_TOKEN=any kai chat -m "list my tables"
    (kai discovers the backend through the emulator's /v2/storage, as with Keboola).
    Triggers: "list my tables", "create a bucket called NAME", "two buckets",
    "run job COMPONENT CONFIG", "delete bucket ID", "describe table ID as TEXT",
    "fail", "boom", "abort", "think", "slow"; anything else gets a plain answer.
    """
    require_extra("emulator", "kai serve")
    from kai_core.testing import Faults
    from kai_core.testing import serve as run_emulator
    from kai_core.testing.server import check_host

    try:
        check_host(host, allow_remote)
    except ValueError as exc:
        raise click.UsageError(f"{exc}; use --allow-remote to override") from None
    faults = Faults(
        drop_after=drop_after,
        malformed_at=malformed_at,
        chunk_delay=chunk_delay,
        keepalive=keepalive,
        rate_limited=rate_limit,
        retry_after=retry_after,
        unavailable=fail_next,
        scope="all" if fault_scope == "all" else "chat",
    )

    def ready(emulator: object) -> None:
        from ..hints import kai_command

        url = getattr(emulator, "base_url", "")
        click.echo(
            f"Kai emulator (kai-{backend}) on {url}; point kai at it: "
            f"STORAGE_API_URL={url} STORAGE_API_TOKEN={'<your --token>' if token else 'any'} "
            f'{kai_command()} chat -m "list my tables". Ctrl-C stops.'
        )
        sys.stdout.flush()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_sigterm, nursery.cancel_scope)
            await run_emulator(
                backend="assistant" if backend == "assistant" else "agent",
                token=token,
                host=host,
                port=port,
                allow_remote=allow_remote,
                faults=faults,
                access_log=access_log,
                on_ready=ready,
            )

    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass
    except BaseExceptionGroup as group:
        _, rest = group.split(KeyboardInterrupt)
        if rest is None:
            return
        oserror, others = rest.split(OSError)
        if oserror is None or others is not None:
            raise
        first: BaseException = oserror.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise click.ClickException(f"cannot listen on {host}:{port}: {first}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None


async def _stop_on_sigterm(scope: trio.CancelScope) -> None:
    """SIGTERM (a process manager) stops the server as cleanly as Ctrl-C does."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
