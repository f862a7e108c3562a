"""Run the emulated backend with hypercorn on trio: :func:`open_emulator` and :func:`serve`.

Example::

    async with open_emulator(backend="assistant") as emulator:
        async with KaiClient(emulator.token, emulator.storage_api_url,
                             base_url=emulator.base_url) as client:
            ...

The server listens on loopback only, unless ``allow_remote=True`` is given;
``port=0`` picks a free port (``emulator.base_url`` tells which).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Literal

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from .app import EmulatorApp
from .faults import Faults
from .scenarios import Reply, Scenario
from .state import EmulatorState
from .tools import Tool

__all__ = ["DEFAULT_TOKEN", "Emulator", "open_emulator", "serve"]

DEFAULT_TOKEN = "kai-emulator-token"
"""The token :attr:`Emulator.token` gives when none was configured (any non-empty one works)."""

_SHUTDOWN_GRACE = 2.0


class Emulator:
    """A running emulated backend: where it listens, its knobs, its state, its scripts."""

    def __init__(self, app: EmulatorApp, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        """``http://127.0.0.1:<port>``: the Kai API (``--base-url``)."""

    @property
    def storage_api_url(self) -> str:
        """The Storage API URL for discovery: the same server serves ``/v2/storage``."""
        return self.base_url

    @property
    def token(self) -> str:
        """A token the emulator accepts: the configured one, else :data:`DEFAULT_TOKEN`."""
        return self.app.token if self.app.token is not None else DEFAULT_TOKEN

    @property
    def backend(self) -> Literal["agent", "assistant"]:
        """``"agent"`` or ``"assistant"``."""
        return self.app.backend

    @property
    def service_id(self) -> str:
        """The service id ``/v2/storage`` lists: ``kai-agent`` or ``kai-assistant``."""
        return self.app.service_id

    @property
    def faults(self) -> Faults:
        """The fault knobs (see :class:`~kai_core.testing.faults.Faults`)."""
        return self.app.faults

    @property
    def state(self) -> EmulatorState:
        """Chats, messages, votes, settings and the request log, for assertions."""
        return self.app.state

    def script(
        self,
        respond: Callable[[str], Reply],
        trigger: str | Callable[[str], bool] | None = None,
        name: str = "",
    ) -> Scenario:
        """Answer matching messages with ``respond(text)``, before any earlier script.

        :param respond: returns steps, step items, or chunk Structs (see
            :mod:`kai_core.testing.scenarios`).
        :param trigger: case-insensitive substring, predicate, or None (every message).
        :returns: the registered scenario (pass it to :meth:`unscript`).
        """
        scenario = Scenario(respond, trigger, name)
        self.add_scenario(scenario)
        return scenario

    def add_scenario(self, scenario: Scenario) -> None:
        """Register a scenario ahead of the earlier ones and the built-ins."""
        self.app.scenarios.insert(0, scenario)

    def unscript(self, scenario: Scenario | None = None) -> None:
        """Remove one scripted scenario, or all of them (the built-ins stay)."""
        if scenario is None:
            self.app.scenarios.clear()
        else:
            self.app.scenarios.remove(scenario)

    def add_tool(self, tool: Tool) -> None:
        """Make a tool available to scripts (and list it in ``/api/settings/tools``)."""
        self.app.tools[tool.name] = tool

    def __repr__(self) -> str:
        return f"Emulator(backend={self.backend!r}, base_url={self.base_url!r})"


def check_host(host: str, allow_remote: bool) -> str:
    """The address to bind; refuses a non-loopback one unless ``allow_remote``."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ValueError(
            f"refusing to listen on {host}: the emulator binds loopback only (pass allow_remote=True to override)"
        )
    return host


def _asgi(app: EmulatorApp) -> Any:
    # hypercorn's precise ASGI types are narrower than starlette's; the app is plain ASGI 3.
    return app


@asynccontextmanager
async def open_emulator(
    *,
    backend: Literal["agent", "assistant"] = "agent",
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_remote: bool = False,
    faults: Faults | None = None,
    state: EmulatorState | None = None,
    resume_window: float = 30.0,
    access_log: bool = False,
) -> AsyncIterator[Emulator]:
    """Serve the emulated backend until the block ends.

    :param backend: ``"agent"`` (default) or ``"assistant"``.
    :param token: accept only this token; None accepts any non-empty token.
    :param port: 0 picks a free port.
    :param allow_remote: allow a non-loopback ``host``.
    :param access_log: log each request to stderr (hypercorn's access log).
    :returns: the running :class:`Emulator`. On exit, answers still being
        written (even one waiting for an approval) are cancelled and the
        server stops within a couple of seconds at most.
    """
    bind_host = check_host(host, allow_remote)
    app = EmulatorApp(
        backend=backend, token=token, state=state, faults=faults, resume_window=resume_window
    )
    config = Config()
    config.bind = [f"[{bind_host}]:{port}" if ":" in bind_host else f"{bind_host}:{port}"]
    config.accesslog = "-" if access_log else None
    config.loglevel = "WARNING"  # no "Running on ..." banner
    config.include_server_header = False  # the fixtures' headers have none
    config.graceful_timeout = _SHUTDOWN_GRACE
    stop = trio.Event()
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(hypercorn_serve, _asgi(app), config, shutdown_trigger=stop.wait)
        )
        try:
            yield Emulator(app, binds[0])
        except BaseException as exc:
            # Re-raised below, outside the nursery, so that the caller sees its own
            # exception and not an ExceptionGroup wrapping it.
            failure = exc
        finally:
            app.stop_answers()
            stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + 2 * _SHUTDOWN_GRACE
    if failure is not None:
        raise failure


async def serve(
    *,
    backend: Literal["agent", "assistant"] = "agent",
    token: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_remote: bool = False,
    faults: Faults | None = None,
    access_log: bool = False,
    on_ready: Callable[[Emulator], None] | None = None,
) -> None:
    """Run the emulator until cancelled (``kai serve``); ``on_ready`` gets it once it listens."""
    async with open_emulator(
        backend=backend,
        token=token,
        host=host,
        port=port,
        allow_remote=allow_remote,
        faults=faults,
        access_log=access_log,
    ) as emulator:
        if on_ready is not None:
            on_ready(emulator)
        await trio.sleep_forever()
