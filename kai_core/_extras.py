"""Optional parts of kai and the extras that install them.

The library (``pip install kai``) has only what a client needs. The command
line, the emulator and the other edges come with extras; when one is used
without its extra, :func:`require` says in one line what to install.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Final

__all__ = ["EXTRAS", "MissingExtraError", "require"]

EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "cli": ("click", "prompt_toolkit", "rich"),
    "emulator": ("starlette", "hypercorn"),
    "html": ("markdown_it",),
    "otel": ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"),
    "mcp": ("mcp", "hypercorn"),
}
"""extra name -> the top-level modules it brings."""


class MissingExtraError(ModuleNotFoundError):
    """A part of kai was used without the extra that installs it."""

    def __init__(self, extra: str, feature: str, missing: list[str]) -> None:
        super().__init__(
            f"{feature} needs kai's {extra!r} extra (missing: {', '.join(missing)}): "
            f"pip install 'kai[{extra}]'",
            name=missing[0],
        )
        self.extra = extra


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` can be imported.

    :param extra: a key of :data:`EXTRAS`.
    :param feature: what needs it, for the message (``"kai serve"``).
    """
    missing = [name for name in EXTRAS[extra] if not _importable(name)]
    if missing:
        raise MissingExtraError(extra, feature, missing)


def _importable(name: str) -> bool:
    # find_spec raises, rather than returning None, when a dotted name's parent is missing.
    try:
        return find_spec(name) is not None
    except ModuleNotFoundError:
        return False
