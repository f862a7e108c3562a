"""The renderer contract in kai_core.render: base class, default choice, guarding."""

from __future__ import annotations

import io

import pytest

from kai_core.events import TextEvent
from kai_core.render import (
    GuardedRenderer,
    Renderer,
    UnknownRendererError,
    create_renderer,
    default_renderer_name,
)


class TtyStream(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Recorder(Renderer):
    def event(self, event):  # type: ignore[no-untyped-def]
        self.stream.write(event.text)


class Exploding(Renderer):
    def event(self, event):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")


def test_base_renderer_does_nothing() -> None:
    out = io.StringIO()
    renderer = Renderer(out, color=True)
    renderer.begin("hi")
    renderer.event(TextEvent(text="x"))
    renderer.notice("note")
    renderer.end()
    assert out.getvalue() == ""
    assert renderer.color is True and renderer.stream is out


def test_default_renderer_is_markdown_on_a_terminal_only() -> None:
    assert default_renderer_name(TtyStream()) == "markdown"
    assert default_renderer_name(io.StringIO()) == "plain"
    closed = io.StringIO()
    closed.close()
    assert default_renderer_name(closed) == "plain"


def test_create_renderer_by_name_and_default() -> None:
    factories = {"plain": Recorder, "markdown": Renderer}
    assert type(create_renderer(factories, "plain", io.StringIO())) is Recorder
    assert type(create_renderer(factories, None, io.StringIO())) is Recorder
    assert type(create_renderer(factories, None, TtyStream())) is Renderer


def test_unknown_renderer_names_the_choices() -> None:
    with pytest.raises(UnknownRendererError) as info:
        create_renderer({"plain": Recorder, "json": Recorder}, "fancy", io.StringIO())
    assert str(info.value) == "no renderer named 'fancy' (available: json, plain)"


def test_guarded_renderer_reports_once_and_falls_back() -> None:
    out = io.StringIO()
    reports: list[str] = []
    guarded = GuardedRenderer(Exploding(out), reports.append, fallback=Recorder(out))
    guarded.begin("hi")
    guarded.event(TextEvent(text="lost "))
    guarded.event(TextEvent(text="shown"))
    guarded.event(TextEvent(text="!"))
    guarded.end()
    assert reports == [
        "renderer Exploding failed in event: RuntimeError: kaboom (disabled for this session)"
    ]
    assert guarded.failed
    assert out.getvalue() == "shown!"


def test_guarded_renderer_without_fallback_goes_quiet() -> None:
    reports: list[str] = []
    guarded = GuardedRenderer(Exploding(io.StringIO()), reports.append)
    for _ in range(3):
        guarded.event(TextEvent(text="x"))
    guarded.end()
    assert len(reports) == 1
