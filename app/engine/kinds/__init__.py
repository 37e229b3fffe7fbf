"""Task kinds: the interface (``base``), the built-ins, and the registry that also
loads plugin kinds from the ``taskdesk.task_kinds`` entry-point group."""

from app.engine.kinds.base import (
    DEVICE_TARGETS,
    HOST_TARGETS,
    DeviceHandle,
    PermanentError,
    RunContext,
    TaskKind,
)
from app.engine.kinds.registry import (
    ENTRY_POINT_GROUP,
    KindRegistry,
    builtin_kinds,
    default_registry,
)

__all__ = [
    "DEVICE_TARGETS",
    "ENTRY_POINT_GROUP",
    "HOST_TARGETS",
    "DeviceHandle",
    "KindRegistry",
    "PermanentError",
    "RunContext",
    "TaskKind",
    "builtin_kinds",
    "default_registry",
]
