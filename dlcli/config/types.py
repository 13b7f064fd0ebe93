"""Check a plain YAML value against a Python type annotation, and say what was expected."""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "a mapping",
          list: "a list", tuple: "a list", type(None): "null"}


def conform(value: Any, ann: Any) -> tuple[bool, Any]:
    """(True, value coerced to ``ann``) when ``value`` fits ``ann``; (False, value) otherwise.

    Coercions are the lossless ones YAML needs: an int where a float is expected, a list
    where a tuple is expected. A bool is never taken for a number (YAML's ``yes`` is not 1).
    """
    if ann is Any:
        return True, value
    origin, args = get_origin(ann), get_args(ann)
    if origin in (Union, types.UnionType):
        for arg in args:
            ok, coerced = conform(value, arg)
            if ok:
                return True, coerced
        return False, value
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args), value
    if ann is type(None) or ann is None:
        return value is None, value
    if ann is bool:
        return isinstance(value, bool), value
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if ann is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if ann is str:
        return isinstance(value, str), value
    if ann in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        if origin is tuple and args and args[-1] is not Ellipsis:  # fixed length: tuple[int, int]
            if len(args) != len(value):
                return False, value
            items = [conform(v, a) for v, a in zip(value, args, strict=True)]
        else:
            item_ann = args[0] if args else Any
            items = [conform(v, item_ann) for v in value]
        if not all(ok for ok, _ in items):
            return False, value
        return True, [v for _, v in items]
    if ann is dict or origin is dict:
        if not isinstance(value, dict):
            return False, value
        if len(args) == 2:
            items = {k: conform(v, args[1]) for k, v in value.items()}
            if not all(ok for ok, _ in items.values()):
                return False, value
            return True, {k: v for k, (_, v) in items.items()}
        return True, value
    if isinstance(ann, type):
        return isinstance(value, ann), value
    return True, value


def describe(ann: Any) -> str:
    """Human words for a type annotation: 'a number or null', "one of 'a', 'b'"."""
    if ann is Any:
        return "any value"
    origin, args = get_origin(ann), get_args(ann)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if ann in _NAMES:
        return _NAMES[ann]
    if origin in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values"
        inner = describe(args[0]) if args else "values"
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict:
        return "a mapping"
    return getattr(ann, "__name__", str(ann))


def show(value: Any) -> str:
    """A value as the user wrote it, with its YAML type."""
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})" if kind != "null" else "null"
