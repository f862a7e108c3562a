"""The public surface of kai_core: every exported name resolves, lazily."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kai_core


def test_every_public_name_resolves() -> None:
    for name in kai_core.__all__:
        assert getattr(kai_core, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        kai_core.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


@pytest.mark.e2e
def test_import_is_cheap() -> None:
    code = (
        "import sys, kai_core; "
        "heavy = [m for m in ('httpx', 'sqlite3', 'sqlite_utils', 'trio', 'rich') if m in sys.modules]; "
        "print(heavy)"
    )
    # Measured without coverage (CI's run follows subprocesses; it imports sqlite3).
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def test_kai_client_readme_names() -> None:
    from kai_core import KaiClient, SSEStreamParser, ToolApprovalRequestEvent

    assert hasattr(KaiClient, "send_message") and hasattr(KaiClient, "from_storage_api")
    assert hasattr(SSEStreamParser, "process_event")
    assert ToolApprovalRequestEvent.type == "tool-approval-request"


@pytest.mark.e2e
def test_kai_client_names_resolve_lazily_from_their_modules() -> None:
    # kai-client's exports (see docs/kai-client.md): each from the module that defines it.
    code = (
        "import sys, kai_core; "
        "from kai_core import (parse_sse_event, raise_for_error_response, ERROR_CODE_MAP, "
        "TextPart, ToolCallPart, ToolResultPart, StepStartPart, MessageRequest, ChatRequest, "
        "ErrorResponse, McpConnection, VoteType, VisibilityType, ToolRestrictions, SSEEvent); "
        "print(VoteType.UP.value, ErrorResponse.__name__, parse_sse_event.__module__, "
        "'httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["up", "ErrorBody", "kai_core.assemble", "False"]


# -- the public names, pinned (as trio's test_exports pins trio's) -------------
#
# Adding or removing a public name is a decision: update the checked-in list
# (tests/data/api_*.txt) in the same change, and document the name.

DATA = Path(__file__).resolve().parent / "data"
DOCS = Path(__file__).resolve().parent.parent / "docs"
PUBLIC_MODULES = {"kai_core": "api_kai_core.txt", "kai_core.testing": "api_kai_core_testing.txt"}


def pinned(listing: str) -> list[str]:
    return (DATA / listing).read_text().split()


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_public_names_are_the_pinned_ones(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(pinned(PUBLIC_MODULES[module_name]))
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_every_public_name_resolves_and_is_listed(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module), name


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_every_public_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    docs = "\n".join(page.read_text() for page in DOCS.rglob("*.md"))
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isroutine(value):
            assert inspect.getdoc(value), f"{module_name}.{name} has no docstring"
        assert re.search(rf"\b{re.escape(name)}\b", docs), f"{module_name}.{name} is not in docs/"


@pytest.mark.parametrize("module_name", sorted(PUBLIC_MODULES))
def test_type_checkers_see_the_same_names(module_name: str) -> None:
    # The names load lazily at run time; type checkers read the
    # ``if TYPE_CHECKING:`` imports instead. Both lists must agree.
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__ or "").read_text())
    seen: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    seen.update(alias.asname or alias.name for alias in stmt.names)
    assert seen == set(module.__all__) - {"__version__"}
