"""The generated documentation pages match the code they document.

``docs/cli.md`` is rendered from the click commands by
``docs/_scripts/cli_reference.py``; ``docs/api/index.md`` lists the public
names of ``kai_core``. Both are regenerated or checked here, so neither can
drift from the code.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import kai_core

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load_generator() -> ModuleType:
    path = DOCS / "_scripts" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("kai_docs_cli_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date() -> None:
    expected = load_generator().render()
    actual = (DOCS / "cli.md").read_text()
    assert actual == expected, (
        "docs/cli.md is stale: run `uv run python docs/_scripts/cli_reference.py`"
    )


def test_cli_reference_covers_every_command() -> None:
    from kai_shell.cli import COMMANDS

    page = (DOCS / "cli.md").read_text()
    for name in COMMANDS:
        assert f"## `kai {name}`" in page
    for sub in ("path", "stats", "export", "import", "rebuild", "backup", "forget"):
        assert f"#### `kai log {sub}`" in page
    assert "## `kai-shell`" in page and "## Exit codes" in page


def test_api_overview_lists_every_public_name() -> None:
    page = (DOCS / "api" / "index.md").read_text()
    listed = set(re.findall(r"\[`(\w+)`\]\[kai_core\.", page))
    public = {name for name in kai_core.__all__ if name != "__version__"}
    assert listed == public
    for name in public:
        module = kai_core._EXPORTS[name]
        assert f"[`{name}`][kai_core.{module}.{name}]" in page


def test_architecture_names_only_files_that_exist() -> None:
    """docs/architecture.md points maintainers at files; a rename must update it."""
    page = (DOCS / "architecture.md").read_text()
    root = DOCS.parent
    named = re.findall(r"`((?:kai_core|kai_plugins|kai_shell|tests)/[\w/.*]+)`", page)
    assert len(named) > 15
    for path in named:
        assert list(root.glob(path)), f"docs/architecture.md names {path}, which does not exist"
