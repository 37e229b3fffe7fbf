"""The registry of task kinds: built-ins plus plugins found through entry points.

Every way of creating a task (GUI, CLI, API, JSON-RPC, schedules, goals) goes
through ``KindRegistry.validate`` so a bad kind, target or payload is refused
before anything is stored. Plugins are loaded from the entry-point group
``taskdesk.task_kinds`` (see docs/plugins.md); a plugin that fails to import or
does not provide a ``TaskKind`` is logged and reported, never fatal.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from app.core.enums import TargetKind
from app.core.errors import ValidationError
from app.core.payload import check_payload_size
from app.core.records import amended
from app.core.taskspec import KIND_RE, TaskSpec
from app.engine.kinds.base import TaskKind

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "taskdesk.task_kinds"
BUILTIN_SOURCE = "builtin"


class KindRegistry:
    """Task kinds by name, with where each one came from."""

    def __init__(self) -> None:
        self._kinds: dict[str, TaskKind] = {}
        self._sources: dict[str, str] = {}
        self.plugin_errors: list[str] = []

    # -- registration ---------------------------------------------------------------
    def register(self, kind: TaskKind, *, source: str = BUILTIN_SOURCE) -> None:
        """Add a kind instance.

        Raises:
            ValueError: the name is malformed or already registered.
            TypeError: ``kind`` is not a ``TaskKind`` instance.
        """
        if not isinstance(kind, TaskKind):
            raise TypeError(f"{kind!r} is not a TaskKind instance")
        name = getattr(kind, "name", None)
        if not isinstance(name, str) or not KIND_RE.match(name):
            raise ValueError(
                f"task kind name {name!r} is invalid: use dotted lower-case names like adb.shell"
            )
        if name in self._kinds:
            raise ValueError(
                f"task kind {name!r} is already registered (by {self._sources[name]})"
            )
        self._kinds[name] = kind
        self._sources[name] = source

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Register every kind advertised in ``group``; return one message per failure.

        An entry point may name a ``TaskKind`` subclass (instantiated without
        arguments) or a ``TaskKind`` instance. Failures are logged, kept in
        ``plugin_errors`` and returned; the registry stays usable.
        """
        errors: list[str] = []
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            message = self._load_one(ep)
            if message:
                log.warning("task kind plugin skipped: %s", message)
                errors.append(message)
        self.plugin_errors.extend(errors)
        return errors

    def _load_one(self, ep: EntryPoint) -> str | None:
        where = f"plugin {ep.name!r} ({ep.value}"
        if ep.dist is not None:
            where += f" from {ep.dist.name} {ep.dist.version}"
        where += ")"
        try:
            obj = ep.load()
        except Exception as exc:  # a plugin's import may fail in any way
            log.debug("loading %s failed", where, exc_info=True)
            return f"{where} failed to load: {type(exc).__name__}: {exc}"
        try:
            if isinstance(obj, type) and issubclass(obj, TaskKind):
                kind = obj()
            elif isinstance(obj, TaskKind):
                kind = obj
            else:
                return f"{where} is not a TaskKind subclass or instance (got {obj!r})"
            dist = ep.dist.name if ep.dist is not None else ep.module
            self.register(kind, source=f"plugin:{dist}")
        except Exception as exc:  # instantiation or registration refused
            return f"{where} was not registered: {type(exc).__name__}: {exc}"
        log.info("task kind %r loaded from %s", kind.name, where)
        return None

    # -- lookup ----------------------------------------------------------------------
    def get(self, name: str) -> TaskKind:
        """The kind called ``name``.

        Raises:
            ValidationError: no such kind (field ``kind``).
        """
        try:
            return self._kinds[name]
        except (KeyError, TypeError):
            raise ValidationError(f"unknown task kind {name!r}", field="kind") from None

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def names(self) -> list[str]:
        """Registered kind names, sorted."""
        return sorted(self._kinds)

    def source(self, name: str) -> str:
        """``builtin`` or ``plugin:<distribution>``."""
        self.get(name)
        return self._sources[name]

    def describe_all(self) -> list[dict[str, Any]]:
        """JSON-able descriptions (fields, targets, source) for the API and the GUI editor."""
        return [
            {**self._kinds[name].describe(), "source": self._sources[name]}
            for name in self.names()
        ]

    # -- validation -----------------------------------------------------------------
    def validate(self, spec: TaskSpec) -> TaskSpec:
        """Check ``spec`` against its kind; return it with the payload normalised.

        Raises:
            ValidationError: the generic task rules, an unknown kind, a target the
                kind cannot run on, or a payload the kind refuses.
        """
        spec = spec.validated()
        kind = self.get(spec.kind)
        if spec.target.kind not in kind.targets:
            allowed = ", ".join(sorted(t.value for t in kind.targets))
            raise ValidationError(
                f"task kind {spec.kind!r} cannot run on a {spec.target.kind.value} target "
                f"(allowed: {allowed})",
                field="target",
            )
        payload = kind.validate(spec.payload)
        # Defaults filled in by the kind count against the size limit too.
        check_payload_size(payload)
        return amended(spec, payload=payload)

    def allows_target(self, name: str, target: TargetKind) -> bool:
        """Whether kind ``name`` may run on a target of this kind."""
        return target in self.get(name).targets


def builtin_kinds() -> list[TaskKind]:
    """Fresh instances of every kind that ships with TaskDesk."""
    from app.engine.kinds.adb_kinds import ADB_KINDS
    from app.engine.kinds.demo import DemoCaptureKind
    from app.engine.kinds.local_kinds import LOCAL_KINDS

    classes: list[type[TaskKind]] = [*ADB_KINDS, *LOCAL_KINDS, DemoCaptureKind]
    return [cls() for cls in classes]


def default_registry(load_plugins: bool = True) -> KindRegistry:
    """A registry with the built-in kinds and, unless told not to, the installed plugins."""
    registry = KindRegistry()
    for kind in builtin_kinds():
        registry.register(kind)
    if load_plugins:
        registry.load_entry_points()
    return registry
