"""Errors raised by the domain and the store, with a stable machine code.

``code`` values are part of the API: they appear in JSON error bodies and CLI
messages.
"""

from __future__ import annotations


class TaskDeskError(Exception):
    """Base class; ``code`` names the failure for APIs and the CLI."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(TaskDeskError):
    """Bad input: nothing was changed."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(TaskDeskError):
    code = "not_found"


class ConflictError(TaskDeskError):
    """A state change refused because the row moved on (stale revision, wrong owner…)."""

    code = "conflict"


class TransitionError(ConflictError):
    """An execution or task cannot go from its current status to the requested one."""

    code = "invalid_transition"


class StorageError(TaskDeskError):
    """An environment fault of the database: locked, full, read-only, corrupt."""

    code = "storage_error"


class SchemaTooNewError(StorageError):
    """The database was written by a newer TaskDesk."""

    code = "schema_too_new"
