"""The one strict cattrs converter: Plex's wire format and the configuration file.

Wire models (subclasses of :class:`~stash2plex.models.Wire`) are renamed to Plex's
spelling; every other attrs class (configuration sections) keeps its attribute names.
Primitives are strict: ``"false"`` is not a bool, ``3.7`` is not an int, ``12`` is not a
str. Errors are flattened into messages whose paths use the names the user wrote.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.cols import list_structure_factory
from cattrs.fns import identity
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .models import Wire

_CAMEL_RE = re.compile(r"_([a-z0-9])")
T = TypeVar("T")


class WireError(ValueError):
    """A value could not be structured. ``problems`` are one line each, naming the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def wire_name(field: attrs.Attribute[Any], cls: type) -> str:
    """The key a field has on the wire (Plex's spelling) or in the config file."""
    if not issubclass(cls, Wire):
        return field.name
    return field.metadata.get("wire") or _CAMEL_RE.sub(lambda m: m.group(1).upper(), field.name)


def _strict(kind: type) -> Any:
    def structure(value: Any, _type: Any) -> Any:
        # bool is an int subclass in Python; JSON and TOML keep them apart, so do we.
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    return structure


_PRIMITIVES = frozenset({str, int, float, bool, type(None)})


def _is_optional_primitive(tp: Any) -> bool:
    return (
        typing.get_origin(tp) in (typing.Union, types.UnionType)
        and set(typing.get_args(tp)) <= _PRIMITIVES
    )


def _optional_primitive_structurer(tp: Any) -> Any:
    """``int | None``, ``str | None``...: None, or the one primitive, strictly. One call per
    field instead of cattrs' union dispatch (a match body is a handful of these)."""
    (kind,) = set(typing.get_args(tp)) - {type(None)}
    strict = _strict(kind)

    def structure(value: Any, _type: Any) -> Any:
        return None if value is None else strict(value, kind)

    return structure


def _is_single_optional_primitive(tp: Any) -> bool:
    return _is_optional_primitive(tp) and len(set(typing.get_args(tp)) - {type(None)}) == 1


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise ValueError(f"expected one of {allowed}, got {value!r}") from None


def _omitted_when_default(field: attrs.Attribute[Any]) -> bool:
    """Plex wants an unknown field absent, not null, and an optional list absent, not []:
    a field whose default is None is left out while it is None, an ``omit_empty`` list
    while it is empty; every other field is always sent."""
    return field.default is None or (
        bool(field.metadata.get("omit_empty")) and field.default == attrs.Factory(list)
    )


def make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, omit_if_default=False)
    for kind in (int, float, str, bool):
        conv.register_structure_hook(kind, _strict(kind))
    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _structure_enum
    )
    conv.register_structure_hook_factory(
        _is_single_optional_primitive, _optional_primitive_structurer
    )

    def strict_list_factory(tp: Any, conv: cattrs.Converter) -> Any:
        base = list_structure_factory(tp, conv)

        def structure_list(value: Any, t: Any) -> Any:
            # A bare string would otherwise become a list of its characters.
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {type(value).__name__} {value!r}")
            return base(value, t)

        return structure_list

    conv.register_structure_hook_factory(
        lambda t: typing.get_origin(t) is list, strict_list_factory
    )

    def structure_factory(cls: type) -> Any:
        names = {a.name: override(rename=wire_name(a, cls)) for a in attrs.fields(cls)}
        return make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True, **names)

    def unstructure_factory(cls: type) -> Any:
        if not issubclass(cls, Wire):
            names = {a.name: override(rename=a.name) for a in attrs.fields(cls)}
            return make_dict_unstructure_fn(cls, conv, **names)
        wire_fields = {
            a.name: override(
                rename=wire_name(a, cls),
                omit_if_default=_omitted_when_default(a),
                # Push-only fields (collections, user rating) never reach the provider's wire.
                omit=bool(a.metadata.get("push_only")),
            )
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(cls, conv, **wire_fields)

    # Unstructuring a primitive (or None) is the identity; saying so lets cattrs inline
    # it instead of dispatching on every value of every answer.
    conv.register_unstructure_hook_func(_is_optional_primitive, identity)

    def list_unstructure_factory(tp: Any) -> Any:
        (inner_type,) = typing.get_args(tp) or (Any,)
        inner = conv.get_unstructure_hook(inner_type)
        return lambda items: [inner(x) for x in items] if items else []

    conv.register_unstructure_hook_factory(
        lambda t: typing.get_origin(t) is list, list_unstructure_factory
    )
    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return conv


converter = make_converter()


def _problems(exc: BaseException, path: str, cls: type | None) -> Iterator[str]:
    """Walk cattrs' exception groups, translating attribute names into wire names."""
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            yield f"{_join(path, key)}: unknown key"
        return
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub in without:
            yield from _problems(sub, path, cls)
        for sub, note in with_notes:
            name = note.name
            target = cls
            if target is not None and attrs.has(target):
                field = attrs.fields_dict(target).get(name)
                if field is not None:
                    name = wire_name(field, target)
            yield from _problems(sub, _join(path, name), _inner_type(note.type))
        return
    if isinstance(exc, cattrs.IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub in without:
            yield from _problems(sub, path, None)
        for sub, note in with_notes:
            yield from _problems(sub, f"{path}[{note.index}]", _inner_type(note.type))
        return
    if isinstance(exc, cattrs.BaseValidationError):
        for sub in exc.exceptions:
            yield from _problems(sub, path, None)
        return
    if isinstance(exc, KeyError):
        yield f"{path}: required key missing"
        return
    message = str(exc)
    if cls is not None and attrs.has(cls):
        # A validator's message starts with the attribute's name: make it part of the path
        # ("server.port: must be between ..."), in the user's spelling.
        for field in attrs.fields(cls):
            if message.startswith((f"{field.name} ", f"{field.name}:")):
                rest = message[len(field.name) :].lstrip(" :")
                yield f"{_join(path, wire_name(field, cls))}: {rest}"
                return
    yield f"{path}: {message}"


def _inner_type(tp: Any) -> type | None:
    """The attrs class inside ``list[X]`` / ``X | None``, to keep translating names."""
    if isinstance(tp, type) and attrs.has(tp):
        return tp
    for arg in getattr(tp, "__args__", ()):
        found = _inner_type(arg)
        if found is not None:
            return found
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


#: What a hook raises for bad data; :func:`_problems` turns each into messages.
_STRUCTURE_ERRORS = (cattrs.BaseValidationError, ValueError, TypeError, KeyError)


def structure(data: Any, cls: type[T], path: str = "") -> T:
    """Structure ``data`` into ``cls`` or raise :class:`WireError` naming every bad field."""
    if not isinstance(data, dict):
        where = path or "body"
        raise WireError([f"{where}: expected an object, got {type(data).__name__}"])
    try:
        return converter.structure(data, cls)
    except _STRUCTURE_ERRORS as exc:
        raise WireError(list(_problems(exc, path, cls))) from None


def unstructure(obj: Any) -> Any:
    return converter.unstructure(obj)


def structurer(cls: type[T]) -> Callable[[dict[str, Any]], T]:
    """:func:`structure` for one class, its hook looked up once: for a hot path (every
    match request of a scan), the same strictness and the same error messages."""
    hook = converter.get_structure_hook(cls)

    def structure_one(data: dict[str, Any]) -> T:
        try:
            return hook(data, cls)
        except _STRUCTURE_ERRORS as exc:
            raise WireError(list(_problems(exc, "", cls))) from None

    return structure_one


def unstructurer(cls: type[T]) -> Callable[[T], dict[str, Any]]:
    """:func:`unstructure` for one class, its hook looked up once (see :func:`structurer`)."""
    return converter.get_unstructure_hook(cls)


def dumps(obj: Any) -> bytes:
    """Serialize a wire model (or plain data) to JSON bytes."""
    return orjson.dumps(converter.unstructure(obj))


__all__ = [
    "WireError",
    "converter",
    "dumps",
    "structure",
    "structurer",
    "unstructure",
    "unstructurer",
    "wire_name",
]
