"""Check a plain YAML value against a Python type annotation, and say what was expected."""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "a mapping",
          list: "a list", tuple: "a list", type(None): "null"}


@dataclass(frozen=True)
class Range:
    """The values a number may take, declared with its parameter: ``Annotated[float, Range(0, 1)]``.

    ``low`` / ``high`` are inclusive unless ``open_low`` / ``open_high``; None leaves that side open-ended.
    NaN is never in range. Validation refuses a value outside it, naming the key, before anything is built.
    """

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.open_high and value == self.high)))

    def words(self) -> str:
        """'> 0', 'in [0, 1)', '<= 10'."""
        low = None if self.low is None else f"{'>' if self.open_low else '>='} {_num(self.low)}"
        high = None if self.high is None else f"{'<' if self.open_high else '<='} {_num(self.high)}"
        if low and high:
            return (f"in {'(' if self.open_low else '['}{_num(self.low)}, {_num(self.high)}"
                    f"{')' if self.open_high else ']'}")
        return low or high or "any number"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _ranges(ann: Any) -> str:
    """The range words of an ``Annotated`` type ('' for others)."""
    if get_origin(ann) is not Annotated:
        return ""
    return ", ".join(a.words() for a in ann.__metadata__ if isinstance(a, Range))


# the ranges most parameters need, spelled once
Positive = Range(0, None, open_low=True)
NonNegative = Range(0)
AtLeastOne = Range(1)
Fraction = Range(0, 1, open_high=True)  # dropout rates, betas: [0, 1)
Probability = Range(0, 1)
OpenUnit = Range(0, 1, open_low=True, open_high=True)  # factors that shrink: (0, 1)


def conform(value: Any, ann: Any) -> tuple[bool, Any]:
    """(True, value coerced to ``ann``) when ``value`` fits ``ann``; (False, value) otherwise.

    Coercions are the lossless ones YAML needs: an int where a float is expected, a list
    where a tuple is expected. A bool is never taken for a number (YAML's ``yes`` is not 1).
    """
    if ann is Any:
        return True, value
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:  # Annotated[float, Range(0, 1)]: the type, then every range declared with it
        ok, coerced = conform(value, args[0])
        ranges = [a for a in ann.__metadata__ if isinstance(a, Range)]
        return ok and all(_in_range(coerced, r) for r in ranges), coerced
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


def _in_range(value: Any, r: Range) -> bool:
    """Numbers (also each number inside a list, e.g. betas) must be in ``r``; None and other values pass."""
    if isinstance(value, (list, tuple)):
        return all(_in_range(v, r) for v in value)
    if value is None or isinstance(value, (str, bool)) or not isinstance(value, (int, float)):
        return True
    return value in r


def describe(ann: Any) -> str:
    """Human words for a type annotation: 'a number or null', "one of 'a', 'b'", 'a number > 0'."""
    if ann is Any:
        return "any value"
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        return " ".join(w for w in (describe(args[0]), _ranges(ann)) if w)  # 'a number > 0'
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if ann in _NAMES:
        return _NAMES[ann]
    if origin in (list, tuple):
        each = {_ranges(a) for a in args if a is not Ellipsis}
        each_words = f", each {each.pop()}" if len(each) == 1 and "" not in each else ""
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values{each_words}"
        if not args:
            return "a list"
        item = get_args(args[0])[0] if get_origin(args[0]) is Annotated else args[0]
        inner = describe(item)
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}s{each_words}"
    if origin is dict:
        return "a mapping"
    return getattr(ann, "__name__", str(ann))


def show(value: Any) -> str:
    """A value as the user wrote it, with its YAML type."""
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list",
            dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})" if kind != "null" else "null"


# parameter types with their ranges, for builders' signatures: `lr: PositiveFloat = 0.001`
PositiveFloat = Annotated[float, Positive]
NonNegativeFloat = Annotated[float, NonNegative]
NonNegativeInt = Annotated[int, NonNegative]
Count = Annotated[int, AtLeastOne]  # sizes, layer counts, kernel sizes: at least 1
Rate = Annotated[float, Fraction]  # dropout, label smoothing, betas: [0, 1)
Prob = Annotated[float, Probability]  # [0, 1]
ShrinkFactor = Annotated[float, OpenUnit]  # (0, 1)
