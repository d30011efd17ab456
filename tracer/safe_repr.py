"""Bounded, side-effect-free descriptions of Python values for variable snapshots.

A snapshot is taken while the traced view runs, so it must never run the view's own code:
a user-defined ``__repr__`` could raise, hang or allocate without limit. Only values of
exact built-in types are shown in full (and then only up to a size limit); any other object
is described by its type alone, plus a few facts read from known Django objects.
"""

from __future__ import annotations

from typing import Any

MAX_CHARS = 200
MAX_ITEMS = 12
MAX_DEPTH = 3

# Types are compared by identity (a metaclass could define __eq__ or __hash__).
_SCALARS = frozenset(map(id, (int, float, complex, bool, type(None))))
_CONTAINERS = frozenset(map(id, (list, tuple, set, frozenset, dict)))
# Class facts are read through type's own descriptors, so that a metaclass cannot run code
# of its own (for example through __getattribute__).
_TYPE_QUALNAME = type.__dict__["__qualname__"]
_TYPE_MRO = type.__dict__["__mro__"]
_TYPE_DICT = type.__dict__["__dict__"]


def safe_repr(value: Any, max_chars: int = MAX_CHARS) -> str:
    """Describe ``value`` in at most ``max_chars`` characters without calling its methods."""
    text = _describe(value, MAX_DEPTH)
    if len(text) > max_chars:
        return text[: max_chars - 1] + "…"
    return text


def _describe(value: Any, depth: int) -> str:
    kind = type(value)
    if id(kind) in _SCALARS:
        if kind is int and value.bit_length() > 128:
            return f"<int of {value.bit_length()} bits>"
        return repr(value)
    if kind is str:
        return repr(value[:MAX_CHARS]) + ("…" if len(value) > MAX_CHARS else "")
    if kind is bytes or kind is bytearray:
        return repr(value[:MAX_CHARS]) + ("…" if len(value) > MAX_CHARS else "")
    if id(kind) in _CONTAINERS:
        return _describe_container(value, kind, depth)
    return _describe_object(value)


_BRACKETS = {
    id(list): ("[", "]"),
    id(tuple): ("(", ")"),
    id(set): ("{", "}"),
    id(frozenset): ("frozenset({", "})"),
}


def _describe_container(value: Any, kind: type, depth: int) -> str:
    if depth <= 0:
        return f"<{kind.__name__} of {len(value)}>"
    if kind is dict:
        parts = [
            f"{_describe(key, depth - 1)}: {_describe(item, depth - 1)}"
            for key, item in _first(value.items(), MAX_ITEMS)
        ]
        opening, closing = "{", "}"
    else:
        parts = [_describe(item, depth - 1) for item in _first(value, MAX_ITEMS)]
        opening, closing = _BRACKETS[id(kind)]
        if kind is tuple and len(value) == 1:
            closing = ",)"
        if kind is set and not value:
            return "set()"
    if len(value) > MAX_ITEMS:
        parts.append(f"… {len(value) - MAX_ITEMS} more")
    return opening + ", ".join(parts) + closing


def _first(iterable: Any, count: int) -> list[Any]:
    items: list[Any] = []
    for item in iterable:
        if len(items) == count:
            break
        items.append(item)
    return items


def _describe_object(value: Any) -> str:
    """Name the type; for a few well-known Django objects add facts read from attributes."""
    kind = type(value)
    name = _TYPE_QUALNAME.__get__(kind)
    # Only plain instance attributes are read (via the instance dict, never through
    # properties or __getattr__), so no code of the object's class runs.
    attributes = _instance_dict(value)
    if attributes is None:
        return f"<{name}>"
    method, path = attributes.get("method"), attributes.get("path")
    if type(method) is str and type(path) is str:
        return f"<{name} {method} {_describe(path, 0)}>"
    status = attributes.get("status_code", _class_attribute(kind, "status_code"))
    if type(status) is int:
        return f"<{name} status={status}>"
    return f"<{name}>"


def _class_attribute(kind: type, name: str) -> Any:
    for klass in _TYPE_MRO.__get__(kind):
        namespace = _TYPE_DICT.__get__(klass)
        if name in namespace:
            return namespace[name]
    return None


def _instance_dict(value: Any) -> dict[str, Any] | None:
    try:
        attributes = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return None
    return attributes if type(attributes) is dict else None
