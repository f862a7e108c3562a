"""Which kai-agent tools wait for the user's approval.

On kai-agent a tool call that needs approval is only announced by its
``tool-input-available`` chunk; the stream then waits. The server's tool list
(``readOnly`` per tool) and the user's ``toolPermissions`` tell beforehand
which calls will wait; :class:`ToolPolicy` holds both and answers per tool.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ToolPolicy"]


class ToolPolicy:
    """Which kai-agent tools wait for the user's approval.

    A tool waits unless the user set it to ``always_allow`` (or ``blocked``:
    it never runs) or it is read-only; ``always_ask`` always waits. A tool the
    server did not list waits (fail closed).

    :param read_only: tool name → read-only flag (None: the list is unknown).
    :param permissions: tool name → ``always_allow`` | ``always_ask`` | ``blocked``.
    """

    __slots__ = ("permissions", "read_only")

    def __init__(
        self, read_only: Mapping[str, bool] | None, permissions: Mapping[str, str] | None
    ) -> None:
        self.read_only = dict(read_only) if read_only is not None else None
        self.permissions = dict(permissions or {})

    def __repr__(self) -> str:
        known = "unknown" if self.read_only is None else f"{len(self.read_only)} tools"
        return f"ToolPolicy({known}, permissions={self.permissions!r})"

    def waits(self, tool_name: str) -> bool:
        """True when a call of ``tool_name`` will wait for an approval."""
        permission = self.permissions.get(tool_name)
        if permission in ("always_allow", "blocked"):
            return False
        if permission == "always_ask":
            return True
        if self.read_only is None:
            return True
        return not self.read_only.get(tool_name, False)
