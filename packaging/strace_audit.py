"""What a process tree wrote and where it talked, read back from ``strace -ff`` output.

The smoke test runs the frozen console under strace (Linux) and fails if any
successful syscall created, wrote, renamed or removed a path outside its sandbox, or
if any socket was bound, connected or sent to an address off loopback (the design
promises that nothing leaves 127.0.0.1 unless configured). Reads are not audited: the
bundle reads its own files, system libraries, fonts and /proc.
"""

from __future__ import annotations

import re
from pathlib import Path

# ``?`` tells strace not to complain about names this architecture lacks (arm64 has no
# open/creat/mkdir...).
FILE_SYSCALLS = (
    "open", "openat", "openat2", "creat", "mkdir", "mkdirat", "mknod", "mknodat",
    "rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir", "link", "linkat",
    "symlink", "symlinkat", "truncate", "chmod", "fchmodat", "utimensat",
)
NET_SYSCALLS = ("bind", "connect", "sendto", "sendmsg")
STRACE_ARGS = [
    "-ff",            # one output file per process: no interleaved, split lines
    "-qq",            # no attach/exit notices
    "-y",             # show the path behind every fd (dirfds and opened files)
    "--seccomp-bpf",  # stop only on the audited syscalls: the app runs at near full speed
    "-e", "signal=none",
    "-e", "trace=" + ",".join(f"?{name}" for name in FILE_SYSCALLS + NET_SYSCALLS),
]

# Paths outside the sandbox that a normal run writes to, and why that is fine.
ALLOWED_OUTSIDE = {
    "/dev/null": "discarded output (subprocess stdio)",
    "/dev/tty": "the controlling terminal, if any",
    "/dev/pts/": "pseudo-terminals (the simulated phones' shell)",
}

_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)(?:<(?P<fd>.*?)>)?")
_PATH_ARG = re.compile(r'(?:(?:AT_FDCWD|\d+)<(?P<dir>[^>]*)>,\s*)?"(?P<path>(?:[^"\\]|\\.)*)"')
_SUN_PATH = re.compile(r'sun_path="(?P<path>(?:[^"\\]|\\.)*)"')
_INET = re.compile(r'inet_addr\("(?P<v4>[^"]+)"\)|inet_pton\(AF_INET6?, "(?P<v6>[^"]+)"')
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def touched_paths(line: str, cwd: Path) -> list[str]:
    """Paths one successful strace line created/changed/removed (reads give none)."""
    match = _CALL.match(line.strip())
    if match is None or int(match["ret"]) < 0:
        return []
    name, args = match["name"], match["args"]
    if name in NET_SYSCALLS:
        sun = _SUN_PATH.search(args) if name == "bind" else None
        if not sun or not sun["path"]:
            return []  # not a unix socket, or an abstract one (no file)
        path = sun["path"]
        return [path if path.startswith("/") else f"{str(cwd).rstrip('/')}/{path}"]
    if name in ("open", "openat", "openat2") and not any(f in args for f in _WRITE_FLAGS):
        return []
    if name in ("open", "openat", "openat2", "creat") and match["fd"]:
        return [match["fd"]]  # the kernel's own resolution of the opened file
    paths = []
    for arg in _PATH_ARG.finditer(args):
        path = arg["path"]
        if not path.startswith("/"):
            base = arg["dir"] if arg["dir"] else str(cwd)
            path = f"{base.rstrip('/')}/{path}"
        paths.append(path)
    return paths


def remote_addresses(line: str) -> list[str]:
    """IP addresses off loopback that one bind/connect/sendto/sendmsg line used.

    Attempts count, successful or not (a non-blocking connect returns EINPROGRESS).
    """
    match = _CALL.match(line.strip())
    if match is None or match["name"] not in NET_SYSCALLS:
        return []
    found = []
    for inet in _INET.finditer(match["args"]):
        address = inet["v4"] or inet["v6"]
        if not _is_loopback(address):
            found.append(address)
    return found


def audit(trace_prefix: Path, root: Path) -> tuple[list[str], list[str]]:
    """(writes outside ``root``, traffic off loopback) from ``<prefix>.<pid>`` files.

    Each entry reads ``<syscall> <path or address>``, listed once. Relative paths
    given without a directory fd are taken relative to ``root`` (the starting cwd).
    """
    inside = str(root.resolve()).rstrip("/") + "/"
    writes: list[str] = []
    traffic: list[str] = []
    files = sorted(trace_prefix.parent.glob(trace_prefix.name + ".*"))
    if not files:
        return [f"no strace output at {trace_prefix}.*"], []
    for trace in files:
        for line in trace.read_text(encoding="utf-8", errors="replace").splitlines():
            syscall = line.split("(", 1)[0]
            for path in touched_paths(line, root):
                entry = f"{syscall} {path}"
                if not ((path + "/").startswith(inside) or _allowed(path)) \
                        and entry not in writes:
                    writes.append(entry)
            for address in remote_addresses(line):
                entry = f"{syscall} {address}"
                if entry not in traffic:
                    traffic.append(entry)
    return writes, traffic


def _allowed(path: str) -> bool:
    return any(path == allowed or (allowed.endswith("/") and path.startswith(allowed))
               for allowed in ALLOWED_OUTSIDE)


def _is_loopback(address: str) -> bool:
    address = address.lower()
    if address.startswith("::ffff:"):
        address = address[len("::ffff:"):]
    return address.startswith("127.") or address == "::1"
