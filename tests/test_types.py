from typing import Literal

import pytest

from dlcli.config.types import conform, describe, show


@pytest.mark.parametrize(
    ("value", "ann", "expected"),
    [
        (3, float, (True, 3.0)),
        (True, int, (False, True)),
        (True, float, (False, True)),
        (1, bool, (False, 1)),
        ("a", str, (True, "a")),
        (None, int | None, (True, None)),
        (2, int | None, (True, 2)),
        ([1, 2], list[int], (True, [1, 2])),
        ([1, "x"], list[int], (False, [1, "x"])),
        ((256,), list[int], (True, [256])),
        ([0.9, 1], tuple[float, float], (True, [0.9, 1.0])),
        ([0.9], tuple[float, float], (False, [0.9])),
        ("max", Literal["min", "max"], (True, "max")),
        ("mx", Literal["min", "max"], (False, "mx")),
        (32, Literal["32-true", 32], (True, 32)),
        ({"a": 1}, dict, (True, {"a": 1})),
    ],
)
def test_conform(value, ann, expected):
    assert conform(value, ann) == expected


def test_describe_and_show():
    assert describe(float | None) == "a number or null"
    assert describe(Literal["a", "b"]) == "one of 'a', 'b'"
    assert describe(list[int]) == "a list of integers"
    assert show("abc") == "'abc' (string)"
    assert show(None) == "null"
