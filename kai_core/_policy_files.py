"""Where the permission rules live: each scope's policy file, found without reading it.

Kept apart from :mod:`kai_core.permissions` (which re-exports all of it) so
that a program can learn that no policy file applies without importing the
rule engine and msgspec: ``kai-shell`` checks this before its first prompt
(issue 16), and reads the rules only when there are some.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = [
    "ENV_MANAGED_POLICY",
    "MANAGED_POLICY_PATH",
    "PROJECT_POLICY",
    "find_policy_files",
    "user_policy_path",
]

ENV_MANAGED_POLICY: Final = "KAI_MANAGED_POLICY"
MANAGED_POLICY_PATH: Final = Path("/etc/kai/policy.toml")
PROJECT_POLICY: Final = Path(".kai") / "policy.toml"


def user_policy_path() -> Path:
    """``policy.toml`` in kai's config folder (``~/.config/kai/policy.toml`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("kai")) / "policy.toml"


def _project_policy(cwd: Path) -> Path | None:
    for folder in (cwd, *cwd.parents):
        candidate = folder / PROJECT_POLICY
        if candidate.is_file():
            return candidate
    return None


def find_policy_files(
    command_line: str | os.PathLike[str] | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] = os.environ,
) -> list[tuple[str, Path]]:
    """``(scope, path)`` of every policy file that applies, in scope order.

    A file named by ``$KAI_MANAGED_POLICY`` or ``--policy`` is listed even when
    missing (reading it is then an error); the others only when they exist.
    """
    found: list[tuple[str, Path]] = []
    managed_env = environ.get(ENV_MANAGED_POLICY)
    if managed_env:
        found.append(("managed", Path(managed_env)))
    elif MANAGED_POLICY_PATH.exists():
        found.append(("managed", MANAGED_POLICY_PATH))
    user = user_policy_path()
    if user.exists():
        found.append(("user", user))
    project = _project_policy(cwd or Path.cwd())
    if project is not None:
        found.append(("project", project))
    if command_line is not None:
        found.append(("command-line", Path(command_line)))
    return found
