"""What code written for kai-client expects of kai's Structs.

kai-client's events and models are pydantic models: they are built with
``type=`` and with camelCase aliases (``ToolCallEvent(type="tool-call",
toolCallId=...)``) and serialised with ``model_dump()``. kai's are frozen
msgspec Structs; this module gives them the same surface, thinly:

* :class:`KaiClientInit`, a metaclass: a keyword msgspec rejects (``type=``,
  a camelCase alias) is translated and the call made again. The translation
  runs only after msgspec refused the call, so kai's own construction (the
  hot path of every stream) costs one metaclass call and nothing more.
* :class:`ModelMethods`: ``model_dump``, ``model_dump_json`` and
  ``model_validate`` over msgspec.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, ClassVar, Final, TypeVar

import msgspec
from msgspec import StructMeta

__all__ = ["KaiClientInit", "ModelMethods", "enum_value", "to_camel"]

_T = TypeVar("_T")
_json: Final = msgspec.json.Encoder()
_CAMEL = re.compile(r"_([a-z])")


def to_camel(name: str) -> str:
    """``tool_call_id`` → ``toolCallId``."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def enum_value(value: Any) -> str:
    """An enum's value, or the string given in its place (kai-client took its enums, kai takes both)."""
    return str(getattr(value, "value", value))


_aliases: dict[type, dict[str, str]] = {}


def _alias_map(cls: type) -> dict[str, str]:
    names = _aliases.get(cls)
    if names is None:
        fields: tuple[str, ...] = cls.__struct_fields__  # type: ignore[attr-defined]
        names = {to_camel(f): f for f in fields if to_camel(f) != f}
        _aliases[cls] = names
    return names


class KaiClientInit(StructMeta):
    """Metaclass of events: accept kai-client's ``type=`` and camelCase keywords.

    ``type=`` must equal the class's own ``type`` (a different value is a
    :class:`TypeError` naming both); classes whose ``type`` is a field
    (``UnknownEvent``, ``DataEvent``) take it as usual.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TypeError:
            if not kwargs:
                raise
            translated = _translate(cls, kwargs)
            if translated is None:
                raise
        return super().__call__(*args, **translated)


def _translate(cls: type, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """kai-client's keywords as kai's, or None when there is nothing to translate."""
    fields: tuple[str, ...] = cls.__struct_fields__  # type: ignore[attr-defined]
    aliases = _alias_map(cls)
    out: dict[str, Any] = {}
    changed = False
    for key, value in kwargs.items():
        if key == "type" and "type" not in fields:
            own = getattr(cls, "type", None)
            if enum_value(value) != own:
                raise TypeError(
                    f"{cls.__name__} has type {own!r}; type={value!r} belongs to another event"
                )
            changed = True
            continue
        name = aliases.get(key, key)
        changed |= name != key
        out[name] = value
    return out if changed else None


def _dump(value: Any, by_alias: bool) -> Any:
    if isinstance(value, msgspec.Struct):
        out: dict[str, Any] = {}
        own_type = getattr(type(value), "type", None)
        if isinstance(own_type, str) and "type" not in value.__struct_fields__:
            out["type"] = own_type
        for field in msgspec.structs.fields(value):
            if field.name == "chunk":
                continue  # an event's wire chunk is not part of its model
            # The wire's name: camelCase, whether the Struct renames or not (events don't).
            key = to_camel(field.name) if by_alias else field.name
            out[key] = _dump(getattr(value, field.name), by_alias)
        return out
    if isinstance(value, dict):
        return {k: _dump(v, by_alias) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dump(v, by_alias) for v in value]
    return msgspec.to_builtins(value)


class ModelMethods:
    """pydantic's serialisation methods, for code that calls them on kai's Structs."""

    __slots__ = ()
    __struct_fields__: ClassVar[tuple[str, ...]]

    def model_dump(self, *, by_alias: bool = False, exclude_none: bool = False) -> dict[str, Any]:
        """The Struct as a dict of builtins: snake_case names, or the wire's with ``by_alias``."""
        out: dict[str, Any] = _dump(self, by_alias)
        if exclude_none:
            out = {k: v for k, v in out.items() if v is not None}
        return out

    def model_dump_json(self, *, by_alias: bool = False, exclude_none: bool = False) -> str:
        """:meth:`model_dump` as a JSON string."""
        dumped = self.model_dump(by_alias=by_alias, exclude_none=exclude_none)
        return _json.encode(dumped).decode()

    @classmethod
    def model_validate(cls: type[_T], obj: Any) -> _T:
        """Build from a dict as the server sends it (camelCase keys; snake_case accepted too).

        :raises msgspec.ValidationError: when ``obj`` does not fit (a ``ValueError``,
            as pydantic's ``ValidationError`` is).
        """
        if isinstance(obj, cls):
            return obj
        if "chunk" in cls.__struct_fields__ and isinstance(obj, dict):  # type: ignore[attr-defined]
            # An event: its ``chunk`` (a wire chunk) is no model field; build it
            # from the fields (``type`` is checked by the constructor).
            return cls(**_event_fields(cls, obj))
        return msgspec.convert(_wire_keys(cls, obj), cls)


def _field_map(cls: type) -> dict[str, msgspec.structs.FieldInfo]:
    """``cls``'s fields by their snake_case and their camelCase names."""
    fields = {}
    for info in msgspec.structs.fields(cls):
        fields[info.name] = fields[to_camel(info.name)] = info
    return fields


def _event_fields(cls: type, obj: dict[str, Any]) -> dict[str, Any]:
    fields = _field_map(cls)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        field = fields.get(key)
        if field is None or field.name == "chunk":
            if key == "type":
                out[key] = value
            continue
        nested = field.type
        if isinstance(nested, type) and issubclass(nested, ModelMethods):
            value = nested.model_validate(value)
        out[field.name] = value
    return out


def _wire_keys(cls: type, obj: Any) -> Any:
    """``obj`` with the keys of ``cls``'s fields (and of nested Structs) as msgspec
    decodes them, whether they came snake_case or camelCase. Other keys (those
    of free-form values such as a tool's input) are left alone."""
    if not isinstance(obj, dict):
        return obj
    fields = _field_map(cls)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            out[key] = value
        else:
            out[field.encode_name] = _nested_keys(field.type, value)
    return out


def _nested_keys(annotation: Any, value: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return _wire_keys(annotation, value)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        structs = [a for a in args if isinstance(a, type) and issubclass(a, msgspec.Struct)]
        return _wire_keys(structs[0], value) if len(structs) == 1 else value
    if origin is list and args and isinstance(value, list):
        return [_nested_keys(args[0], item) for item in value]
    return value
