"""A tiny in-memory POSIX-like filesystem for one simulated phone.

Enough for adb's sync service (stat, list, push, pull) and the shell builtins
(``cat``, ``ls``, ``rm``, ``mkdir``, redirections). Paths are absolute and
normalised; there are no permissions, links or users.
"""

from __future__ import annotations

import posixpath
import stat
import threading
import time
from dataclasses import dataclass, field

S_DIR = stat.S_IFDIR | 0o771
S_FILE = stat.S_IFREG | 0o644

DEFAULT_DIRS = (
    "/data",
    "/data/local",
    "/data/local/tmp",
    "/data/app",
    "/sdcard",
    "/sdcard/Download",
    "/sdcard/DCIM",
    "/sdcard/Pictures",
    "/storage",
    "/storage/emulated",
    "/storage/emulated/0",
    "/system",
    "/system/bin",
    "/vendor",
    "/proc",
    "/dev",
)


class FsError(Exception):
    """A filesystem operation failed; ``str()`` is the errno text, e.g. "No such file"."""


@dataclass
class Node:
    """A file (``data`` is not None) or a directory (``data`` is None)."""

    mode: int
    mtime: int = field(default_factory=lambda: int(time.time()))
    data: bytes | None = None

    @property
    def is_dir(self) -> bool:
        return self.data is None

    @property
    def size(self) -> int:
        return 4096 if self.data is None else len(self.data)


def normalize(path: str, cwd: str = "/") -> str:
    """An absolute, normalised path (``..`` resolved, no trailing slash)."""
    joined = posixpath.join(cwd, path) if not path.startswith("/") else path
    norm = posixpath.normpath(joined)
    return "/" if norm in ("", ".", "//") else norm.replace("//", "/")


class MemoryFs:
    """Thread-safe: the sim loop writes, tests may read from their own thread."""

    def __init__(self) -> None:
        self._nodes: dict[str, Node] = {"/": Node(S_DIR)}
        self._lock = threading.Lock()
        for directory in DEFAULT_DIRS:
            self.mkdir(directory, parents=True)
        self.write("/dev/null", b"")

    def stat(self, path: str) -> Node | None:
        with self._lock:
            return self._nodes.get(normalize(path))

    def exists(self, path: str) -> bool:
        return self.stat(path) is not None

    def total_bytes(self) -> int:
        """Bytes held in files (for ``df``)."""
        with self._lock:
            return sum(len(n.data) for n in self._nodes.values() if n.data is not None)

    def read(self, path: str) -> bytes:
        node = self.stat(path)
        if node is None:
            raise FsError("No such file or directory")
        if node.data is None:
            raise FsError("Is a directory")
        return node.data

    def write(self, path: str, data: bytes, *, append: bool = False, mode: int = 0o644,
              mtime: int | None = None) -> None:
        """Create or replace a file; parent directories are created (adb's fixed_push_mkdir)."""
        path = normalize(path)
        parent = posixpath.dirname(path)
        self.mkdir(parent, parents=True)
        with self._lock:
            existing = self._nodes.get(path)
            if existing is not None and existing.is_dir:
                raise FsError("Is a directory")
            if append and existing is not None and existing.data is not None:
                data = existing.data + data
            self._nodes[path] = Node(
                stat.S_IFREG | (mode & 0o7777),
                mtime if mtime else int(time.time()),
                bytes(data),
            )

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        path = normalize(path)
        with self._lock:
            if path in self._nodes:
                if not self._nodes[path].is_dir:
                    raise FsError("Not a directory")
                if not parents:
                    raise FsError("File exists")
                return
            parent = posixpath.dirname(path)
            missing: list[str] = []
            while parent not in self._nodes:
                if not parents:
                    raise FsError("No such file or directory")
                missing.append(parent)
                parent = posixpath.dirname(parent)
            if not self._nodes[parent].is_dir:
                raise FsError("Not a directory")
            for directory in reversed(missing):
                self._nodes[directory] = Node(S_DIR)
            self._nodes[path] = Node(S_DIR)

    def listdir(self, path: str) -> list[tuple[str, Node]]:
        path = normalize(path)
        with self._lock:
            node = self._nodes.get(path)
            if node is None:
                raise FsError("No such file or directory")
            if not node.is_dir:
                return [(posixpath.basename(path), node)]
            prefix = path.rstrip("/") + "/"
            return sorted(
                (name[len(prefix):], child)
                for name, child in self._nodes.items()
                if name.startswith(prefix) and "/" not in name[len(prefix):] and name != path
            )

    def remove(self, path: str, *, recursive: bool = False) -> None:
        path = normalize(path)
        if path == "/":
            raise FsError("Device or resource busy")
        with self._lock:
            node = self._nodes.get(path)
            if node is None:
                raise FsError("No such file or directory")
            if node.is_dir:
                if not recursive:
                    raise FsError("Is a directory")
                prefix = path + "/"
                for child in [n for n in self._nodes if n.startswith(prefix)]:
                    del self._nodes[child]
            del self._nodes[path]
