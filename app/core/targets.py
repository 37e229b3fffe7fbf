"""Task targets: where a task may run.

Text form (CLI, API, CSV):
    ``any``                 any idle device
    ``device:SERIAL``       exactly that device
    ``tags:a,b``            devices carrying all these tags
    ``model:Pixel 7``       devices of this model (may be combined: ``tags:lab;model:Pixel 7``)
    ``agent:UUID``          a remote agent
    ``host``                the console host itself
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.core.enums import TargetKind
from app.core.errors import ValidationError

_TAG_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class Target:
    kind: TargetKind = TargetKind.ANY
    serial: str | None = None
    agent_uuid: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    model: str | None = None

    # -- construction ---------------------------------------------------------------
    @classmethod
    def any(cls) -> Target:
        return cls()

    @classmethod
    def device(cls, serial: str) -> Target:
        serial = serial.strip()
        if not serial or len(serial) > 128 or any(c.isspace() for c in serial):
            raise ValidationError(f"invalid device serial {serial!r}", field="target")
        return cls(kind=TargetKind.DEVICE, serial=serial)

    @classmethod
    def selector(cls, tags: Iterable[str] = (), model: str | None = None) -> Target:
        clean = tuple(sorted({t.strip() for t in tags if t.strip()}))
        for tag in clean:
            if not _TAG_RE.match(tag):
                raise ValidationError(f"invalid tag {tag!r}", field="target")
        model = model.strip() if model else None
        if not clean and not model:
            raise ValidationError("a selector needs tags or a model", field="target")
        return cls(kind=TargetKind.SELECTOR, tags=clean, model=model or None)

    @classmethod
    def agent(cls, agent_uuid: str) -> Target:
        try:
            value = str(uuid.UUID(agent_uuid.strip()))
        except ValueError as exc:
            raise ValidationError(f"invalid agent uuid {agent_uuid!r}", field="target") from exc
        return cls(kind=TargetKind.AGENT, agent_uuid=value)

    @classmethod
    def host(cls) -> Target:
        return cls(kind=TargetKind.HOST)

    @classmethod
    def parse(cls, text: str | None) -> Target:
        """Parse the text form; ``None`` or empty means ``any``."""
        if text is None:
            return cls.any()
        text = text.strip()
        if text in ("", "any"):
            return cls.any()
        if text == "host":
            return cls.host()
        if text.startswith("device:"):
            return cls.device(text[len("device:"):])
        if text.startswith("agent:"):
            return cls.agent(text[len("agent:"):])
        if text.startswith(("tags:", "model:")):
            tags: list[str] = []
            model: str | None = None
            for part in text.split(";"):
                key, _, value = part.partition(":")
                key = key.strip()
                if key == "tags":
                    tags.extend(value.split(","))
                elif key == "model":
                    model = value
                else:
                    raise ValidationError(f"invalid selector part {part!r}", field="target")
            return cls.selector(tags, model)
        raise ValidationError(
            f"invalid target {text!r}: use any, device:SERIAL, tags:a,b, model:NAME, "
            "agent:UUID or host",
            field="target",
        )

    # -- presentation ---------------------------------------------------------------
    def __str__(self) -> str:
        if self.kind is TargetKind.DEVICE:
            return f"device:{self.serial}"
        if self.kind is TargetKind.AGENT:
            return f"agent:{self.agent_uuid}"
        if self.kind is TargetKind.SELECTOR:
            parts = []
            if self.tags:
                parts.append("tags:" + ",".join(self.tags))
            if self.model:
                parts.append("model:" + self.model)
            return ";".join(parts)
        return self.kind.value

    @property
    def storage_value(self) -> str | None:
        """The value column stored beside ``kind`` (serial, uuid or selector text)."""
        if self.kind is TargetKind.DEVICE:
            return self.serial
        if self.kind is TargetKind.AGENT:
            return self.agent_uuid
        if self.kind is TargetKind.SELECTOR:
            return str(self)
        return None

    @classmethod
    def from_storage(cls, kind: str, value: str | None) -> Target:
        k = TargetKind(kind)
        if k is TargetKind.DEVICE:
            return cls(kind=k, serial=value)
        if k is TargetKind.AGENT:
            return cls(kind=k, agent_uuid=value)
        if k is TargetKind.SELECTOR:
            return cls.parse(value or "")
        return cls(kind=k)

    @property
    def is_device_target(self) -> bool:
        return self.kind in (TargetKind.ANY, TargetKind.DEVICE, TargetKind.SELECTOR)

    def matches_device(self, serial: str, tags: Iterable[str], model: str | None) -> bool:
        """Whether a device with these properties may run a task with this target."""
        if self.kind is TargetKind.ANY:
            return True
        if self.kind is TargetKind.DEVICE:
            return serial == self.serial
        if self.kind is TargetKind.SELECTOR:
            have = set(tags)
            if any(t not in have for t in self.tags):
                return False
            return not (self.model and (model or "").lower() != self.model.lower())
        return False
