"""An event sink that tells observer plugins about every logged record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .log import EventLog, LogRecord
    from .plugins import Plugins

__all__ = ["ObservedLog"]


class ObservedLog:
    """Wraps an :class:`~kai_core.log.EventLog` (or nothing, with logging off).

    :meth:`append` writes to the log first, then calls every
    ``kai_observe_event`` implementation for each record, each one isolated
    (a plugin that raises is reported once and disabled). Everything else is
    delegated to the wrapped log.
    """

    def __init__(self, log: EventLog | None, plugins: Plugins) -> None:
        self.log = log
        self.plugins = plugins

    def append(self, records: Sequence[LogRecord]) -> None:
        """Log the records durably, then show them to the observers."""
        if self.log is not None:
            self.log.append(records)
        self.plugins.call_each_over("kai_observe_event", "record", records)

    def __getattr__(self, name: str) -> Any:
        if self.log is None:
            raise AttributeError(f"logging is off; the log has no {name!r}")
        return getattr(self.log, name)
