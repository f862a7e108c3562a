"""What a front end needs, built once from the command-line options.

The ``kai`` CLI and ``kai-shell`` share this: credentials (flags, then the
environment, then ``.env.local``), the event log (on by default, ``--no-log``
turns it off), the plugin manager with the approval policies, and the client.
Heavy modules are imported inside the functions that need them, so that
``kai --help`` stays fast.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError, require_extra

if TYPE_CHECKING:
    from kai_core.client import KaiClient
    from kai_core.log import EventLog
    from kai_core.permissions import PermissionSet
    from kai_core.plugins import Plugins
    from kai_core.render import Renderer
    from kai_core.session import Session

__all__ = ["Options", "Runtime", "UsageError", "load_env_file"]


def load_env_file(path: Path = Path(".env.local"), warn: Any = None) -> None:
    """Load ``KEY=VALUE`` lines of ``.env.local`` into the environment (existing
    variables win). A file that others can read gets a warning: it holds a token."""
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH) and warn is not None:
        warn(f"warning: {path} is readable by other users; run: chmod 600 {path}")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip().strip('"').strip("'")
        os.environ.setdefault(key, value)


ENV_OPTIONS = (
    ("token", "STORAGE_API_TOKEN"),
    ("url", "STORAGE_API_URL"),
    ("base_url", "KAI_BASE_URL"),
    ("service", "KAI_SERVICE"),
    ("db", "KAI_DB"),
)
"""Options that fall back to an environment variable (which .env.local may set)."""


def fill_from_environment(options: dict[str, Any], prog: str) -> dict[str, Any]:
    """Load ``.env.local``, then fill unset options from the environment.

    click reads the variables before the file is loaded, hence this second look.
    """
    load_env_file(Path(".env.local"), warn=lambda m: print(f"{prog}: {m}", file=sys.stderr))
    for name, env in ENV_OPTIONS:
        if options.get(name) is None:
            options[name] = os.environ.get(env) or None
    return options


@dataclass
class Options:
    """The options every front end accepts (flags win over the environment)."""

    token: str | None = None
    url: str | None = None
    base_url: str | None = None
    service: str | None = None
    require_https: bool = False
    db: str | None = None
    no_log: bool = False
    renderer: str | None = None
    policy: str | None = None
    auto_approve: bool = False
    debug: bool = False
    vote: bool = False
    theme: str | None = None

    def resolved_token(self) -> str | None:
        return self.token or os.environ.get("STORAGE_API_TOKEN") or None

    def resolved_url(self) -> str | None:
        return self.url or os.environ.get("STORAGE_API_URL") or None

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get("KAI_BASE_URL") or None

    def resolved_service(self) -> str | None:
        return self.service or os.environ.get("KAI_SERVICE") or None

    def resolved_require_https(self) -> bool:
        # The variable may come from .env.local, read after click looked.
        value = os.environ.get("KAI_REQUIRE_HTTPS", "").strip().lower()
        return self.require_https or value in ("1", "true", "yes", "on")


@dataclass
class Runtime:
    """Front-end wiring: options, plugins, log and client factory."""

    options: Options
    report: Any = field(default=None)
    _plugins: Plugins | None = None
    _permissions: PermissionSet | None = None
    _policy_files: list[tuple[str, Path]] | None = None  # what check_config found
    _log: EventLog | None = None
    _log_opened: bool = False

    def say(self, message: str) -> None:
        """One line on stderr (made safe for a terminal: it may quote a server or plugin)."""
        from kai_core.sanitize import for_terminal

        message = for_terminal(message)
        if self.report is not None:
            self.report(message)
        else:
            print(f"kai: {message}", file=sys.stderr)

    @property
    def permissions(self) -> PermissionSet:
        """The permission rules of every scope (``--policy`` the last), read once.

        :raises UsageError: (exit 3) a policy file is broken, or the managed
            policy forbids ``--auto-approve`` and it was given.
        """
        if self._permissions is None:
            from kai_core.permissions import PermissionSet, PolicyError, load_permissions

            try:
                if self._policy_files == []:  # none applied when check_config looked
                    permissions = PermissionSet()
                else:
                    permissions = load_permissions(self.options.policy)
                if self.options.auto_approve:
                    permissions.refuse_auto_approve()
            except PolicyError as exc:
                raise UsageError(str(exc), code=3) from None
            for warning in permissions.warnings:
                self.say(f"warning: {warning}")
            self._permissions = permissions
        return self._permissions

    @property
    def plugins(self) -> Plugins:
        """The plugin manager, with ``--auto-approve``'s policy when asked for.

        The permission rules are not a plugin here: the session asks
        :attr:`permissions` itself, before any plugin.
        """
        if self._plugins is None:
            from kai_core.plugins import Plugins
            from kai_plugins.policies import register_builtin_policies

            permissions = self.permissions  # a broken policy stops us here
            plugins = Plugins(report=self.say)
            register_builtin_policies(
                plugins,
                auto_approve=self.options.auto_approve,
                permissions=permissions,
                rules_plugin=False,
            )
            self._start_telemetry(plugins)
            self._plugins = plugins
        return self._plugins

    def session(self, client: KaiClient, **options: Any) -> Session:
        """A :class:`~kai_core.session.Session` with this run's plugins and permission rules."""
        from kai_core.session import Session

        return Session(client, plugins=self.plugins, permissions=self.permissions, **options)

    def _start_telemetry(self, plugins: Plugins) -> None:
        """Register the OpenTelemetry exporter when ``KAI_ENABLE_TELEMETRY`` or the config asks."""
        if self._telemetry_wanted():
            from kai_plugins.telemetry import register_telemetry

            register_telemetry(plugins, token=self.options.resolved_token(), warn=self.say)

    def _telemetry_wanted(self) -> bool:
        """Whether telemetry is on; on without the ``otel`` extra, exit 3 naming it.

        :raises UsageError: (exit 3) its settings are broken.
        """
        from kai_plugins.telemetry import ENABLE_ENV, TelemetryConfigError, telemetry_enabled

        try:
            wanted = telemetry_enabled()
        except TelemetryConfigError as exc:
            raise UsageError(str(exc), code=3) from None
        if wanted:
            require_extra("otel", f"telemetry ({ENABLE_ENV})")
        return wanted

    def check_config(self) -> None:
        """Read what could stop the program (the policy files, the telemetry
        settings) without loading the plugins: kai-shell's early prompt
        (:mod:`kai_shell.shell.early`) shows only once this has passed.

        No policy file applies (the usual case): nothing of them can stop the
        program, and the rule engine is not imported here (kai-shell's first
        prompt comes sooner); :attr:`permissions` is then the empty set, as
        decided here, not looked up again.

        :raises UsageError: (exit 3) as :attr:`permissions` and :attr:`plugins` would.
        """
        if self._permissions is None:
            from kai_core._policy_files import find_policy_files

            self._policy_files = find_policy_files(self.options.policy)
            if self._policy_files:
                _ = self.permissions
        self._telemetry_wanted()

    @property
    def log(self) -> EventLog | None:
        """The event log, or None with ``--no-log``."""
        if not self._log_opened:
            self._log_opened = True
            if not self.options.no_log:
                from kai_core.log import EventLog, default_log_path

                self._log = EventLog(self.options.db or default_log_path())
        return self._log

    def observed_log(self) -> Any:
        """The log wrapped so that observer plugins see every record."""
        from kai_core.observe import ObservedLog

        return ObservedLog(self.log, self.plugins)

    def _has_observers(self) -> bool:
        return self.plugins.has("kai_observe_event")

    def renderer(self, stream: Any = None) -> Renderer:
        """The renderer chosen by ``--renderer`` (default: markdown on a terminal)."""
        from kai_core._terminal import is_terminal
        from kai_core.render import UnknownRendererError, create_renderer

        stream = stream or sys.stdout
        try:
            return create_renderer(
                self.plugins.renderers(), self.options.renderer, stream, color=is_terminal(stream)
            )
        except UnknownRendererError as exc:
            raise UsageError(str(exc)) from None

    def guarded_renderer(self, stream: Any = None) -> Renderer:
        """:meth:`renderer`, isolated: if the plugin raises, it is reported once
        and plain output takes over, so the answer still reaches the user."""
        from kai_core.render import GuardedRenderer
        from kai_plugins.renderers import PlainRenderer

        stream = stream or sys.stdout
        return GuardedRenderer(self.renderer(stream), self.say, fallback=PlainRenderer(stream))

    def require_token(self) -> str:
        token = self.options.resolved_token()
        if not token:
            raise UsageError(
                "no Storage API token: pass --token or set STORAGE_API_TOKEN "
                "(or put it in .env.local)",
                code=3,
            )
        return token

    @asynccontextmanager
    async def client(self, *, with_log: bool = True) -> AsyncIterator[KaiClient]:
        """An open client for the configured server (discovery unless --base-url)."""
        from kai_core.client import KaiClient

        token = self.require_token()
        url = self.options.resolved_url()
        if not url:
            raise UsageError(
                "no Storage API URL: pass --url or set STORAGE_API_URL "
                "(e.g. https://connection.keboola.com)",
                code=3,
            )
        check_url(url, "--url", "https://connection.keboola.com")
        base_url = self.options.resolved_base_url()
        if base_url:
            check_url(base_url, "--base-url", "http://localhost:3000")
        log = (
            self.observed_log()
            if with_log and (self.log is not None or self._has_observers())
            else None
        )
        require_https = self.options.resolved_require_https()
        if base_url:
            client = KaiClient(
                storage_api_token=token,
                storage_api_url=url,
                base_url=base_url,
                backend=_backend_name(self.options.resolved_service()),
                log=log,
                require_https=require_https,
            )
        else:
            import warnings

            from kai_core.discovery import InsecureURLWarning

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", InsecureURLWarning)
                client = await KaiClient.from_storage_api(
                    storage_api_token=token,
                    storage_api_url=url,
                    service=self.options.resolved_service(),
                    require_https=require_https,
                )
            for warning in caught:
                if issubclass(warning.category, InsecureURLWarning):
                    self.say(f"warning: {warning.message}")
                else:  # not ours to show differently
                    warnings.warn_explicit(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )
            client.log = log
        client.on_log_error = self._log_failed
        async with client:
            yield client

    def _log_failed(self, error: Exception) -> None:
        self.say(f"warning: {error}; the event log is off for the rest of this run")


def check_url(url: str, flag: str, example: str) -> None:
    """Refuse, before any request, a URL that is not ``http(s)://host...``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. a bad port or an unbalanced [ in the host
        ok = False
    if not ok:
        raise UsageError(
            f"{flag} {url!r} is not a URL; give the whole address, e.g. {flag} {example}"
        )


def _backend_name(service: str | None) -> str:
    # A direct base URL says nothing about the backend: assume kai-agent (the
    # current one, kai-client's default) unless told otherwise. Guessing v6
    # instead would leave a kai-agent stream waiting for an approval that is
    # never sent; the session copes with a kai-assistant server behind it.
    if service is None:
        return "kai-agent"
    return service if service.startswith("kai-") else f"kai-{service}"
