"""Declarative payload schemas for task kinds.

A kind lists its fields once; the same list validates payloads (engine, API,
CLI) and generates the payload editor in the GUI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.errors import ValidationError
from app.core.jsontext import encode_json, flat_size_bound

FieldType = Literal["str", "int", "float", "bool", "str_list", "json", "path"]

MAX_PAYLOAD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Field:
    """One payload field.

    ``path`` is a local file path (the GUI shows a file picker); ``json`` is any
    JSON value; ``str_list`` is a list of strings (argv, tags).
    """

    name: str
    type: FieldType = "str"
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for APIs and generated editors."""
        out: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.default is not None:
            out["default"] = self.default
        if self.help:
            out["help"] = self.help
        if self.choices:
            out["choices"] = list(self.choices)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


@dataclass(frozen=True)
class Schema:
    fields: tuple[Field, ...] = field(default_factory=tuple)
    allow_extra: bool = False

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.fields]

    def validate(self, payload: Any) -> dict[str, Any]:
        """Return a normalised copy of ``payload`` (defaults filled) or raise."""
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise ValidationError("payload must be a JSON object", field="payload")
        known = {f.name for f in self.fields}
        unknown = sorted(set(payload) - known)
        if unknown and not self.allow_extra:
            raise ValidationError(
                f"unknown payload field(s): {', '.join(unknown)}", field=unknown[0]
            )
        out: dict[str, Any] = {k: payload[k] for k in unknown}
        for f in self.fields:
            if f.name not in payload or payload[f.name] is None:
                if f.required:
                    raise ValidationError(f"payload field {f.name!r} is required", field=f.name)
                if f.default is not None:
                    out[f.name] = f.default
                continue
            out[f.name] = _coerce(f, payload[f.name])
        return out


def _coerce(f: Field, value: Any) -> Any:
    def bad(why: str) -> ValidationError:
        return ValidationError(f"payload field {f.name!r} {why}", field=f.name)

    if f.type in ("str", "path"):
        if not isinstance(value, str):
            raise bad("must be a string")
        if f.required and not value.strip():
            raise bad("must not be empty")
        if f.max_length is not None and len(value) > f.max_length:
            raise bad(f"is longer than {f.max_length} characters")
        result: Any = value
    elif f.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value.strip())
            else:
                raise bad("must be an integer")
        result = value
    elif f.type == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise bad("must be a number") from None
        result = float(value)
    elif f.type == "bool":
        if not isinstance(value, bool):
            raise bad("must be true or false")
        result = value
    elif f.type == "str_list":
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise bad("must be a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise bad("must be a list of strings")
        if f.required and not value:
            raise bad("must not be empty")
        result = list(value)
    else:  # json
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise bad("must be JSON") from None
        result = value
    if f.choices and result not in f.choices:
        raise bad(f"must be one of {', '.join(map(str, f.choices))}")
    if f.type in ("int", "float"):
        if f.min is not None and result < f.min:
            raise bad(f"must be at least {f.min:g}")
        if f.max is not None and result > f.max:
            raise bad(f"must be at most {f.max:g}")
    return result


def encoded_size(payload: Any) -> int:
    return len(encode_json(payload).encode())


def check_payload_size(payload: Any, limit: int = MAX_PAYLOAD_BYTES) -> None:
    bound = flat_size_bound(payload)
    if bound is not None and bound <= limit:
        return  # small and plainly JSON: no need to encode it to know
    try:
        size = encoded_size(payload)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"payload is not JSON: {exc}", field="payload") from exc
    if size > limit:
        raise ValidationError(
            f"payload is {size} bytes; the limit is {limit} bytes", field="payload"
        )
