"""The reusable encoders write exactly what json.JSONEncoder writes, refuse what it
refuses, and are safe to use from several threads at once."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

from app.core.jsontext import compact_json, flat_size_bound, is_flat_json_object

VALUES = [
    {}, [], "", "ünïcode ✓ \n \"quoted\"", 0, -1, 2**70, 1.5, 1e-300, True, False, None,
    {"steps": 1, "package": "com.example", "nested": [1, {"a": None, "b": [True, 2.25]}]},
    {"1": "keys", "": "empty key"}, ["x"] * 50,
]


@pytest.mark.parametrize("value", VALUES)
def test_output_is_the_standard_encoders(value: object) -> None:
    reference = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode(value)
    assert compact_json()(value) == reference
    assert compact_json(allow_nan=False)(value) == reference


def test_strict_encoder_refuses_nan_and_infinity_and_the_lenient_one_writes_them() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            compact_json(allow_nan=False)({"x": [bad]})
    assert compact_json()([math.nan, math.inf]) == "[NaN,Infinity]"


def test_non_json_values_and_cycles_are_refused_and_the_encoder_still_works_after() -> None:
    encode = compact_json()
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        encode({"a": [1, {"b": object()}]})
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    with pytest.raises(ValueError, match="Circular"):
        encode(cycle)
    shared = [1, 2]
    assert encode({"a": shared, "b": shared}) == '{"a":[1,2],"b":[1,2]}'  # not a cycle


class YieldingDict(dict):  # type: ignore[type-arg]
    """A mapping whose items() lets other threads run mid-encode (the C encoder calls
    it for dict subclasses), so two threads are inside one object at once."""

    def items(self):  # type: ignore[no-untyped-def, override]
        time.sleep(0.0001)
        return super().items()


def test_threads_encoding_the_same_object_at_once_never_see_a_false_cycle() -> None:
    encode = compact_json()
    shared = YieldingDict(items=[YieldingDict(n=i, tags=["a", "b"]) for i in range(20)])
    expected = json.dumps(shared, separators=(",", ":"))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(100):
                assert encode(shared) == expected
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_flat_objects_are_recognised_without_encoding_and_anything_else_is_not() -> None:
    assert is_flat_json_object({})
    assert is_flat_json_object({"ok": True, "n": 3, "s": "x", "none": None, "f": 1.5})
    for not_flat in ({"f": math.nan}, {"f": math.inf}, {1: "int key"}, {"list": [1]},
                     {"nested": {}}, {"obj": object()}, ["a"], "text", None,
                     {"sub": type("S", (str,), {})("x")}):
        assert not is_flat_json_object(not_flat), not_flat


@pytest.mark.parametrize("value", [
    {}, {"a": ""}, {"ü" * 40: "\x00\n\"\\" * 30}, {"n": -(10**19), "f": -2.2250738585072014e-308},
    {"f": 1e308, "t": True, "z": None, "e": "✓" * 100},
])
def test_flat_size_bound_is_never_below_the_encoded_size(value: dict[str, object]) -> None:
    bound = flat_size_bound(value)
    assert bound is not None
    assert bound >= len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def test_flat_size_bound_leaves_big_numbers_and_nested_values_to_the_encoder() -> None:
    assert flat_size_bound({"n": 10**30}) is None
    assert flat_size_bound({"l": [1]}) is None
    assert flat_size_bound("text") is None
