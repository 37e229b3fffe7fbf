"""Compact JSON text as the store keeps it, without json's per-call set-up.

``json.JSONEncoder.encode`` builds a new C encoder on every call, which costs more
than encoding the small objects a task carries (a payload, a result, metadata: a
few are encoded per task, thousands of tasks a second). These encoders build it
once per thread and reuse it. The output is exactly ``JSONEncoder(separators=(",",
":"), ensure_ascii=False, allow_nan=...).encode``'s, circular references included.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from json import encoder as std_encoder
from typing import Any


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def compact_json(*, allow_nan: bool = True) -> Callable[[Any], str]:
    """An encoder function; ``allow_nan=False`` refuses NaN and infinity (ValueError)."""
    make = getattr(std_encoder, "c_make_encoder", None)  # private, hence the fallback
    if make is None:  # an interpreter without the C accelerator
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
                                allow_nan=allow_nan).encode
    # One per thread: the encoder's "markers" (its circular-reference guard) must not
    # be shared by two threads encoding at once.
    local = threading.local()

    def encode(value: Any) -> str:
        chunks = getattr(local, "chunks", None)
        if chunks is None:
            chunks = local.chunks = make({}, _not_json, std_encoder.encode_basestring, None,
                                         ":", ",", False, False, allow_nan)
        return "".join(chunks(value, 0))

    return encode


# The encoders the store, payload checks and the engine share.
encode_json = compact_json()
encode_strict_json = compact_json(allow_nan=False)
"""Refuses NaN and infinities, as the store's validation does."""

_PLAIN = frozenset((str, bool, int, type(None)))


def is_flat_json_object(value: Any) -> bool:
    """True for a dict of text keys to text, whole numbers, booleans, None or finite
    floats: JSON as it is, known without encoding it (most results and metadata).
    Numbers past 10**20 count as not flat: the encoder's slower path takes them."""
    return flat_size_bound(value) is not None


# The longest a scalar can encode to: a float's repr (e.g. -2.2250738585072014e-308)
# or a whole number below 10**20; text is at most 6 bytes a character (\uXXXX).
_SCALAR_BOUND = 24


def flat_size_bound(value: Any) -> int | None:
    """An upper bound of the UTF-8 size of ``value``'s compact JSON when it is a flat
    object (see :func:`is_flat_json_object`), else None: a size limit can be checked
    without encoding the payloads that are obviously small."""
    if type(value) is not dict:
        return None
    size = 2  # {}
    for key, item in value.items():
        if type(key) is not str:
            return None
        size += 6 * len(key) + 4  # "key": and a comma
        kind = type(item)
        if kind is str:
            size += 6 * len(item) + 2
        elif kind is int and not -10**20 < item < 10**20:
            return None  # a huge number: let the encoder count it
        elif kind in _PLAIN or (kind is float and math.isfinite(item)):
            size += _SCALAR_BOUND
        else:
            return None
    return size
