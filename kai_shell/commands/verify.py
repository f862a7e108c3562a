"""``kai verify``: is everything in place to talk to Kai? (kai-client 0.13's command)

Checks, in order: the token (the Storage API's ``tokens/verify``: project and
whether it is a master token), the discovery of the Kai service (or the
``--base-url`` given), ``/ping``, ``/api``, and the message quota
(``/api/usage``). One line per check: ``✓`` passed, ``✗`` failed (with a
hint), ``–`` not applicable to this backend (counts as passed) or not run
because an earlier check failed. ``--json-output`` prints kai-client's report,
``{"ok": ..., "checks": {name: {"ok", "summary", ...}}}``. The exit code is 0
only when every applicable check passed; otherwise that of the first failure
(see the exit codes of ``kai --help``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from ..cli import runtime_of
from ..errors import exit_code_for, run_trio
from ..runtime import UsageError

if TYPE_CHECKING:
    from kai_core.client import KaiClient
    from kai_core.exceptions import KaiError

    from ..runtime import Runtime

__all__ = ["verify"]

_MASTER_HINT = "Kai needs a master token (and the project's agent-chat feature)"


@dataclass
class _Report:
    """The checks run so far, printed as they complete."""

    json_output: bool
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    failure: BaseException | None = None

    @property
    def ok(self) -> bool:
        return all(check["ok"] is not False for check in self.checks.values())

    def passed(self, name: str, summary: str, hint: str | None = None, **extra: Any) -> None:
        self._add(name, True, "✓", summary, hint, extra)

    def failed(self, name: str, error: BaseException, hint: str) -> None:
        summary = _clean(str(error))
        extra: dict[str, Any] = {}
        code = getattr(error, "code", None)
        if code:
            extra = {"code": code, "message": _clean(getattr(error, "message", summary))}
        self.failure = self.failure or error
        self._add(name, False, "✗", summary, hint, extra)

    def not_applicable(self, name: str, why: str) -> None:
        self._add(name, True, "–", why, None, {"skipped": True})

    def not_run(self, name: str, why: str) -> None:
        self._add(name, None, "–", why, None, {"skipped": True})

    def _add(
        self,
        name: str,
        ok: bool | None,
        mark: str,
        summary: str,
        hint: str | None,
        extra: dict[str, Any],
    ) -> None:
        check: dict[str, Any] = {"ok": ok, "summary": summary, **extra}
        if hint:
            check["hint"] = hint
        self.checks[name] = check
        if not self.json_output:
            click.echo(f"{mark} {name}: {summary}")
            if hint:
                click.echo(f"    hint: {hint}")


@click.command()
@click.option("--json-output", is_flag=True, help="Output the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, json_output: bool) -> None:
    """Check the token, the Kai service, its health and the message quota."""
    runtime = runtime_of(ctx)
    report = _Report(json_output)

    async def run() -> None:
        await _run_checks(runtime, report)
        if json_output:
            click.echo(json.dumps({"ok": report.ok, "checks": report.checks}, indent=2))
        else:
            click.echo("\nAll checks passed." if report.ok else "\nSome checks failed (see above).")

    run_trio(ctx, run)
    if not report.ok:
        failure = report.failure
        ctx.exit(exit_code_for(failure) if failure is not None else 1)


async def _run_checks(runtime: Runtime, report: _Report) -> None:
    from kai_core.discovery import verify_token
    from kai_core.exceptions import KaiError

    token = runtime.require_token()
    url = runtime.options.resolved_url()
    if not url:
        raise UsageError("no Storage API URL: pass --url or set STORAGE_API_URL", code=3)
    if not report.json_output:
        click.echo(f"Storage API URL: {_clean(url)}")
    try:
        info = await verify_token(token, url)
    except KaiError as error:
        report.failed("token", error, _token_hint(error))
    else:
        kind = "master" if info.is_master_token else "scoped"
        report.passed(
            "token",
            f"project {_clean(str(info.owner.id))} ({_clean(info.owner.name)}), "
            f"token '{_clean(info.description)}' [{kind}]",
            None if info.is_master_token else _MASTER_HINT,
            project_id=info.owner.id,
            project_name=info.owner.name,
            token_description=info.description,
            is_master_token=info.is_master_token,
        )
    if not report.ok:
        for name in ("service-discovery", "ping", "info", "usage"):
            report.not_run(name, "not checked: the token check failed")
        return
    try:
        async with runtime.client(with_log=False) as client:
            _discovered(runtime, report, client)
            await _check_server(report, client)
    except KaiError as error:
        if "service-discovery" in report.checks:
            raise
        report.failed("service-discovery", error, _discovery_hint(error))
        for name in ("ping", "info", "usage"):
            report.not_run(name, "not checked: no Kai service to check")


def _discovered(runtime: Runtime, report: _Report, client: KaiClient) -> None:
    base = _clean(client.base_url)
    if runtime.options.resolved_base_url():
        report.passed("service-discovery", f"using --base-url {base}")
    else:
        backend = client.backend.value if client.backend else "kai"
        report.passed("service-discovery", f"{backend} at {base}", backend=backend)


async def _check_server(report: _Report, client: KaiClient) -> None:
    from kai_core.discovery import KaiBackend
    from kai_core.exceptions import KaiError, KaiNotFoundError

    unreachable = f"the Kai server at {_clean(client.base_url)} does not answer as Kai"
    try:
        ping = await client.ping()
        report.passed("ping", f"server alive at {_clean(ping.timestamp)}")
    except KaiError as error:
        report.failed("ping", error, f"{unreachable}; check --base-url / discovery")
    try:
        info = await client.info()
        report.passed(
            "info",
            f"{_clean(info.app_name)} v{_clean(info.app_version)} "
            f"(server v{_clean(info.server_version)}, uptime {info.uptime:.0f}s)",
            server_version=info.server_version,
        )
    except KaiError as error:
        report.failed("info", error, unreachable)
    if client.backend is KaiBackend.ASSISTANT:
        report.not_applicable("usage", "kai-assistant has no message quota endpoint")
        return
    try:
        usage = await client.get_usage()
    except KaiNotFoundError:
        report.not_applicable("usage", "this server has no message quota endpoint")
        return
    except KaiError as error:
        report.failed("usage", error, _usage_hint(error))
        return
    left = usage.messages_limit - usage.messages_used
    reset = f"resets {_clean(usage.reset_date)}" if usage.reset_date else "no reset date"
    summary = f"{usage.messages_used}/{usage.messages_limit} messages used ({reset}, {left} left)"
    extra: dict[str, Any] = {
        "messages_used": usage.messages_used,
        "messages_limit": usage.messages_limit,
        "reset_date": usage.reset_date,
    }
    if left > 0:
        report.passed("usage", summary, **extra)
    else:
        from kai_core.exceptions import KaiRateLimitError

        used_up = KaiRateLimitError(summary, "rate_limit:chat")
        report.failed("usage", used_up, "the message quota is used up; wait for the reset")
        report.checks["usage"].update(extra)


def _token_hint(error: KaiError) -> str:
    from kai_core.exceptions import KaiConnectionError, KaiTimeoutError

    if isinstance(error, (KaiConnectionError, KaiTimeoutError)):
        return "check --url / STORAGE_API_URL and the network"
    return "check --token / STORAGE_API_TOKEN, and that --url is the stack the token is from"


def _discovery_hint(error: KaiError) -> str:
    if error.code == "discovery:service_not_found":
        return "choose the backend with --service / KAI_SERVICE, or give --base-url"
    if error.code == "discovery:no_url":
        return "the stack lists the service without a URL; give --base-url"
    return "check --url / STORAGE_API_URL; or give the Kai server with --base-url"


def _usage_hint(error: KaiError) -> str:
    from kai_core.exceptions import KaiAuthenticationError, KaiForbiddenError, KaiRateLimitError

    if isinstance(error, KaiRateLimitError):
        return "the message quota is used up; wait for the reset"
    if isinstance(error, (KaiAuthenticationError, KaiForbiddenError)):
        return _MASTER_HINT
    return "the server did not report the quota"


def _clean(text: str) -> str:
    """Server text made safe for a terminal: control characters become ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
