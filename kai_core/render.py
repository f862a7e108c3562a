"""The contract a renderer follows: how a front end shows a conversation.

A renderer turns the events of a conversation into output on one text
stream. Front ends (``kai chat``, ``kai replay``, ``kai-shell``) pick one by
name (``--renderer NAME``) from the factories plugins offer through the
``kai_register_renderers`` hook, and drive it like this::

    renderer = factory(sys.stdout, color=True)
    renderer.begin("list my tables")        # the user sent a message
    for event in events:                     # the answer streams
        renderer.event(event)
    renderer.notice("chat 3f2a... saved")    # a note from the front end
    renderer.end()                           # the answer finished or stopped

One renderer object lives as long as the front end (a shell session renders
many answers with it); ``begin`` .. ``end`` brackets one answer, including
its approval continuations. Renderers write only to their stream, never
read input, never block for long (they run on the streaming path) and never
raise on an event they do not know: they ignore it. :class:`Renderer` is a
base class whose methods do nothing, so a subclass overrides only what it
shows. :class:`GuardedRenderer` keeps a renderer that raises from stopping
the stream.

This module holds no terminal logic; the built-in renderers live in
:mod:`kai_plugins.renderers`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, TextIO

from ._terminal import is_terminal
from .events import Event

__all__ = [
    "GuardedRenderer",
    "Renderer",
    "RendererFactory",
    "UnknownRendererError",
    "create_renderer",
    "default_renderer_name",
]


class Renderer:
    """Base class and contract of every renderer; each method is a no-op here.

    :param stream: where the renderer writes (``sys.stdout`` for the CLI).
    :param color: whether ANSI colors and styles may be used. Front ends
        pass True only for a terminal that wants them (``NO_COLOR`` unset).
    """

    def __init__(self, stream: TextIO, *, color: bool = False) -> None:
        self.stream = stream
        self.color = color

    def begin(self, text: str | None) -> None:
        """A user message was sent; its answer follows.

        :param text: the message, or None when the answer has no new user
            message (a resume, an approval continuation shown on its own).
            Renderers need not echo it: the user has just typed it.
        """

    def event(self, event: Event) -> None:
        """Show one event of the answer, as soon as it arrives.

        Called in stream order, for every event including the
        ``approval-decision`` events the session adds. Unknown event types
        are ignored, never an error. Output a user waits for (text) is
        flushed before returning.
        """

    def notice(self, text: str) -> None:
        """Show a one-line note from the front end (``chat id: ...``, a warning)."""

    def end(self) -> None:
        """The answer finished, failed or was stopped: complete the output and flush."""


class RendererFactory(Protocol):
    """What ``kai_register_renderers`` maps names to (usually a :class:`Renderer` subclass)."""

    def __call__(self, stream: TextIO, *, color: bool = False) -> Renderer: ...


class UnknownRendererError(LookupError):
    """No plugin offers a renderer of that name."""

    def __init__(self, name: str, available: list[str]) -> None:
        names = ", ".join(sorted(available)) or "none"
        super().__init__(f"no renderer named {name!r} (available: {names})")
        self.name = name
        self.available = available


def default_renderer_name(stream: TextIO) -> str:
    """``markdown`` when ``stream`` is a terminal, ``plain`` when it is piped or a file."""
    return "markdown" if is_terminal(stream) else "plain"


def create_renderer(
    factories: Mapping[str, RendererFactory],
    name: str | None,
    stream: TextIO,
    *,
    color: bool = False,
) -> Renderer:
    """Make the renderer ``name`` (the default for ``stream`` when None).

    :param factories: name → factory, as :meth:`kai_core.plugins.Plugins.renderers` returns.
    :raises UnknownRendererError: no factory has that name (the message lists the names).
    """
    chosen = name or default_renderer_name(stream)
    factory = factories.get(chosen)
    if factory is None:
        raise UnknownRendererError(chosen, list(factories))
    return factory(stream, color=color)


class GuardedRenderer(Renderer):
    """Wraps a renderer so that an exception in it never stops the stream.

    The first exception is reported once through ``report`` (with the
    renderer's class and the error); from then on the ``fallback`` renderer
    (if any) takes over, else nothing more is shown.
    """

    def __init__(
        self,
        inner: Renderer,
        report: Callable[[str], None],
        *,
        fallback: Renderer | None = None,
    ) -> None:
        super().__init__(inner.stream, color=inner.color)
        self.inner: Renderer | None = inner
        self.report = report
        self.fallback = fallback
        self.failed = False

    def _call(self, method: str, *args: object) -> None:
        target = self.inner if self.inner is not None else self.fallback
        if target is None:
            return
        try:
            getattr(target, method)(*args)
        except BrokenPipeError:
            raise  # the reader went away (`| head`): not the renderer's fault
        except Exception as exc:
            if target is self.fallback:
                self.fallback = None
            else:
                self.inner = None
            self.failed = True
            self.report(
                f"renderer {type(target).__name__} failed in {method}: "
                f"{type(exc).__name__}: {exc} (disabled for this session)"
            )

    def begin(self, text: str | None) -> None:
        """Forward :meth:`Renderer.begin`."""
        self._call("begin", text)

    def event(self, event: Event) -> None:
        """Forward :meth:`Renderer.event`."""
        self._call("event", event)

    def notice(self, text: str) -> None:
        """Forward :meth:`Renderer.notice`."""
        self._call("notice", text)

    def end(self) -> None:
        """Forward :meth:`Renderer.end`."""
        self._call("end")
