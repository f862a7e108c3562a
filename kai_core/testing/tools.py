"""The emulated Keboola tools: what they are called, whether they write, what they do.

A tool's ``read_only`` flag decides whether it needs the user's approval
(unless the user's ``toolPermissions`` say ``always_allow`` or ``blocked``);
``GET /api/settings/tools`` lists them. Tools work on the emulator's
:class:`~kai_core.testing.state.EmulatorState`, so a created bucket exists
afterwards and creating it again fails, as on a real project.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .state import EmulatorState

__all__ = ["BUILTIN_TOOLS", "Tool", "ToolFailure"]


class ToolFailure(Exception):
    """Raised by a tool to fail; the message becomes the unmasked ``errorText``."""


@dataclass(frozen=True)
class Tool:
    """One tool the emulated assistant can call.

    :param run: ``run(input, state)`` returns the tool's output (any JSON) or
        raises :class:`ToolFailure`.
    :param dynamic: an MCP-style tool (``dynamic: true`` chunks, ``dynamic-tool`` parts).
    """

    name: str
    description: str
    read_only: bool
    run: Callable[[dict[str, Any], EmulatorState], Any]
    dynamic: bool = False

    def info(self) -> dict[str, Any]:
        """The tool as ``GET /api/settings/tools`` lists it."""
        return {"name": self.name, "description": self.description, "readOnly": self.read_only}


def _list_tables(_input: dict[str, Any], state: EmulatorState) -> Any:
    return {"tables": [dict(t) for t in state.tables], "count": len(state.tables)}


def _create_bucket(tool_input: dict[str, Any], state: EmulatorState) -> Any:
    name = str(tool_input.get("name", ""))
    stage = str(tool_input.get("stage", "in"))
    if not name:
        raise ToolFailure("Bucket name must not be empty")
    bucket_id = f"{stage}.c-{name}"
    if bucket_id in state.buckets:
        raise ToolFailure(f"Bucket {bucket_id} already exists")
    bucket = {"id": bucket_id, "name": name, "stage": stage, "created": True}
    state.buckets[bucket_id] = bucket
    return dict(bucket)


def _get_project_info(_input: dict[str, Any], state: EmulatorState) -> Any:
    return {
        "projectId": state.project_id,
        "name": "Emulated project",
        "region": "us-east4",
        "tables": len(state.tables),
    }


def _run_query(tool_input: dict[str, Any], state: EmulatorState) -> Any:
    sql = str(tool_input.get("sql", ""))
    table = sql.rsplit(" ", 1)[-1] if sql else ""
    if not any(t["id"] == table for t in state.tables):
        raise ToolFailure(f"Query failed: table {table or '(none)'} does not exist")
    return {"rows": [], "rowsCount": 0}


def _describe(state: EmulatorState, table_id: str, description: Any) -> None:
    for table in state.tables:
        if table["id"] == table_id:
            table["description"] = description
            return
    raise ToolFailure(f"Table {table_id} not found")


def _update_description(tool_input: dict[str, Any], state: EmulatorState) -> Any:
    table_id = str(tool_input.get("tableId", ""))
    _describe(state, table_id, tool_input.get("description", ""))
    return {"tableId": table_id, "updated": True}


def _update_descriptions(tool_input: dict[str, Any], state: EmulatorState) -> Any:
    table_id = str(tool_input.get("table_id", ""))
    _describe(state, table_id, tool_input.get("description", ""))
    return {"table_id": table_id, "updated": True}


def _run_job(tool_input: dict[str, Any], state: EmulatorState) -> Any:
    component_id = str(tool_input.get("component_id", ""))
    configuration_id = str(tool_input.get("configuration_id", ""))
    if not component_id or not configuration_id:
        raise ToolFailure("component_id and configuration_id are required")
    job = {
        "id": str(1000 + len(state.jobs)),
        "component_id": component_id,
        "configuration_id": configuration_id,
        "status": "created",
    }
    state.jobs.append(job)
    return dict(job)


def _delete_bucket(tool_input: dict[str, Any], state: EmulatorState) -> Any:
    bucket_id = str(tool_input.get("bucket_id", ""))
    if state.buckets.pop(bucket_id, None) is None:
        raise ToolFailure(f"Bucket {bucket_id or '(none)'} not found")
    return {"bucket_id": bucket_id, "deleted": True}


BUILTIN_TOOLS: tuple[Tool, ...] = (
    Tool("list_tables", "List the tables in the project's storage.", True, _list_tables),
    Tool("create_bucket", "Create a storage bucket.", False, _create_bucket),
    Tool(
        "get_project_info",
        "Show the project's name, region and size.",
        True,
        _get_project_info,
        dynamic=True,
    ),
    Tool("run_query", "Run a read-only SQL query on a table.", True, _run_query),
    Tool("update_description", "Change a table's description.", False, _update_description),
    Tool(
        "update_descriptions",
        "Change a table's description (table_id, description).",
        False,
        _update_descriptions,
    ),
    Tool("run_job", "Run a component configuration as a job.", False, _run_job),
    Tool("delete_bucket", "Delete a storage bucket.", False, _delete_bucket),
)
"""The tools every emulator starts with (``emulator.tools`` can add more)."""
