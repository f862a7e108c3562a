"""A griffe extension: give msgspec Structs the ``__init__`` msgspec generates.

griffe reads the source statically and sees no ``__init__`` on a
``msgspec.Struct`` subclass, so the API reference would show no signature
and complain that the ``:param ...:`` lines of a Struct's docstring match
no parameter. This extension builds the signature from the annotated fields
(the parents' first, ``kw_only=True`` respected), as griffe's own dataclasses
extension does for ``@dataclass``. Loaded from ``mkdocs.yml``.
"""

from __future__ import annotations

from typing import Any

import griffe

STRUCT = "msgspec.Struct"


def _is_struct(cls: griffe.Class, seen: frozenset[str] = frozenset()) -> bool:
    for base in cls.bases:
        path = base.canonical_path if isinstance(base, griffe.Expr) else str(base)
        if path == STRUCT:
            return True
        parent = _resolve(cls, path)
        if parent is not None and parent.path not in seen and _is_struct(parent, seen | {cls.path}):
            return True
    return False


def _resolve(cls: griffe.Class, path: str) -> griffe.Class | None:
    try:
        found = cls.modules_collection[path]
    except (KeyError, ValueError, griffe.AliasResolutionError):
        return None
    if isinstance(found, griffe.Alias):
        try:
            found = found.final_target
        except griffe.AliasResolutionError:
            return None
    return found if isinstance(found, griffe.Class) else None


def _kw_only(cls: griffe.Class) -> bool:
    keywords = getattr(cls, "keywords", None) or {}
    return str(keywords.get("kw_only", "")) == "True"


def _own_fields(cls: griffe.Class) -> list[griffe.Parameter]:
    kind = (
        griffe.ParameterKind.keyword_only
        if _kw_only(cls)
        else griffe.ParameterKind.positional_or_keyword
    )
    params = []
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.annotation is None:
            continue
        labels = member.labels
        if "property" in labels or (
            "class-attribute" in labels and "instance-attribute" not in labels
        ):
            continue  # ClassVar and properties are not fields
        annotation = str(member.annotation)
        if annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        default: Any = member.value
        if isinstance(default, griffe.ExprCall) and str(default.function).endswith("field"):
            args = {a.name: a.value for a in default.arguments if hasattr(a, "name")}
            if "default_factory" in args:
                default = griffe.ExprCall(function=args["default_factory"], arguments=[])
            else:
                default = args.get("default")
        params.append(
            griffe.Parameter(member.name, annotation=member.annotation, kind=kind, default=default)
        )
    return params


def _fields(cls: griffe.Class, seen: frozenset[str] = frozenset()) -> list[griffe.Parameter]:
    params: list[griffe.Parameter] = []
    for base in cls.bases:
        path = base.canonical_path if isinstance(base, griffe.Expr) else str(base)
        parent = _resolve(cls, path)
        if parent is not None and parent.path not in seen:
            params.extend(_fields(parent, seen | {cls.path}))
    params.extend(_own_fields(cls))
    by_name = {p.name: p for p in params}  # a subclass may redeclare a field
    ordered = list(by_name.values())
    positional = [p for p in ordered if p.kind is not griffe.ParameterKind.keyword_only]
    keyword = [p for p in ordered if p.kind is griffe.ParameterKind.keyword_only]
    return positional + keyword


def _visit(obj: griffe.Module | griffe.Class, done: set[str]) -> None:
    if obj.path in done:
        return
    done.add(obj.path)
    if isinstance(obj, griffe.Class) and "__init__" not in obj.members and _is_struct(obj):
        self_param = griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)
        init = griffe.Function(
            "__init__",
            lineno=0,
            endlineno=0,
            parent=obj,
            parameters=griffe.Parameters(self_param, *_fields(obj)),
            returns="None",
        )
        obj.set_member("__init__", init)
    for member in list(obj.members.values()):
        if not member.is_alias and (member.is_module or member.is_class):
            _visit(member, done)  # type: ignore[arg-type]


class MsgspecStructs(griffe.Extension):
    """Synthesize ``__init__`` for every msgspec Struct of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Hook for loaded packages."""
        _visit(pkg, set())
