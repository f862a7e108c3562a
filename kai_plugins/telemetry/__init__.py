"""Team telemetry: every chat as OpenTelemetry GenAI traces and metrics (``kai[otel]``).

Off by default. ``KAI_ENABLE_TELEMETRY=1`` (or ``enabled = true`` in the
``[telemetry]`` table of ``config.toml`` in kai's config folder) turns it on
in ``kai`` and ``kai-shell``; the standard ``OTEL_*`` variables say where it goes
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``_HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``...). Message and tool content are sent only
with ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.

This module imports nothing of OpenTelemetry: with telemetry off, kai pays
nothing for it. See ``docs/telemetry.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kai_core.plugins import Plugins

    from ._plugin import TelemetryPlugin

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "ENABLE_ENV",
    "PLUGIN_NAME",
    "TelemetryConfigError",
    "capture_content",
    "default_config_path",
    "redactor",
    "register_telemetry",
    "telemetry_enabled",
]

ENABLE_ENV = "KAI_ENABLE_TELEMETRY"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
PLUGIN_NAME = "telemetry"
_TRUE = frozenset({"1", "true", "yes", "on"})


class TelemetryConfigError(ValueError):
    """kai's config file cannot say whether telemetry is on (one line: the file and why)."""


def default_config_path() -> Path:
    """``config.toml`` in kai's config folder (``~/.config/kai/config.toml`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("kai")) / "config.toml"


def telemetry_enabled(
    environ: Mapping[str, str] = os.environ, config_path: Path | None = None
) -> bool:
    """Whether telemetry is on.

    ``KAI_ENABLE_TELEMETRY`` decides when set (``1``, ``true``, ``yes``,
    ``on``; anything else is off); otherwise ``enabled`` in the
    ``[telemetry]`` table of kai's config file, when there is one.

    :raises TelemetryConfigError: the config file is not valid TOML, or
        ``enabled`` is not true or false.
    """
    value = environ.get(ENABLE_ENV, "").strip().lower()
    if value:
        return value in _TRUE
    path = config_path or default_config_path()
    try:
        data = path.read_bytes()
    except OSError:
        return False  # no config file: off
    import tomllib  # only with a config file

    try:
        table = tomllib.loads(data.decode("utf-8")).get("telemetry", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TelemetryConfigError(f"{path}: not valid TOML: {exc}") from None
    enabled = table.get("enabled", False) if isinstance(table, dict) else None
    if not isinstance(enabled, bool):
        raise TelemetryConfigError(f"{path}: [telemetry] enabled must be true or false")
    return enabled


def capture_content(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether message and tool content may be sent (the GenAI opt-in variable)."""
    return environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"


def redactor(*secrets: str | None) -> Callable[[str], str]:
    """A function that replaces every occurrence of the secrets (the token) in a text."""
    found = [s for s in secrets if s]

    def redact(text: str) -> str:
        for secret in found:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return text

    return redact


def register_telemetry(
    plugins: Plugins,
    *,
    token: str | None = None,
    warn: Callable[[str], None] | None = None,
    **exporter_options: Any,
) -> TelemetryPlugin:
    """Register the telemetry observer on ``plugins`` and flush it at exit.

    :param token: the Storage API token, removed from any content sent.
    :param warn: gets the one warning line when the collector did not take everything.
    :param exporter_options: passed to :class:`~kai_plugins.telemetry._export.Exporter`.
    :raises kai_core._extras.MissingExtraError: without the ``otel`` extra.
    """
    import atexit

    from kai_core._extras import require

    require("otel", f"telemetry ({ENABLE_ENV})")
    from ._export import Exporter
    from ._plugin import TelemetryPlugin

    plugin = TelemetryPlugin(
        Exporter(warn=warn, **exporter_options),
        capture_content=capture_content(),
        redact=redactor(token),
    )
    plugins.register(plugin, name=PLUGIN_NAME)
    atexit.register(plugin.close)
    return plugin
