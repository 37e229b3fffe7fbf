"""The agent's ``config.toml``: parsing and validation (default deny for every task kind).

Format (one ``[[server]]`` table per console the agent serves)::

    agent_uuid = "auto_gen"           # or a UUID
    log_level = "info"
    exec_max_character = 10000

    [[server]]
    name = "lab-console"
    ws_url = "ws://127.0.0.1:8765/hub"
    token = "…"                        # masked whenever the config is read back
    allow_task = true
    allow_task_type = []               # if non-empty, replaces every allow_* flag
    allow_ping = false
    allow_execute = false
    …
"""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import ValidationError

TASK_TYPES = ("ping", "tcp_ping", "http_ping", "http_request", "web_shell", "execute",
              "read_config", "edit_config", "ip")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServerEntry:
    name: str
    ws_url: str
    token: str
    allowed: frozenset[str] = field(default_factory=frozenset)

    def allows(self, task_type: str) -> bool:
        return task_type in self.allowed


@dataclass(frozen=True)
class AgentConfig:
    agent_uuid: str
    servers: tuple[ServerEntry, ...]
    log_level: str = "info"
    exec_max_character: int = 10000


def parse_config(text: str) -> AgentConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"config.toml is not valid TOML: {exc}") from exc
    return _validate(data)


def _validate(data: dict[str, Any]) -> AgentConfig:
    agent_uuid = str(data.get("agent_uuid", "auto_gen"))
    if agent_uuid != "auto_gen":
        try:
            agent_uuid = str(uuid.UUID(agent_uuid))
        except ValueError as exc:
            raise ValidationError(f"agent_uuid {agent_uuid!r} is not a UUID",
                                  field="agent_uuid") from exc
    level = str(data.get("log_level", "info")).lower()
    if level not in LOG_LEVELS:
        raise ValidationError(f"log_level must be one of {', '.join(LOG_LEVELS)}",
                              field="log_level")
    limit = data.get("exec_max_character", 10000)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 100 <= limit <= 10_000_000:
        raise ValidationError("exec_max_character must be an integer from 100 to 10000000",
                              field="exec_max_character")
    raw_servers = data.get("server", [])
    if not isinstance(raw_servers, list) or not raw_servers:
        raise ValidationError("at least one [[server]] table is required", field="server")
    servers = []
    names: set[str] = set()
    for index, raw in enumerate(raw_servers, start=1):
        if not isinstance(raw, dict):
            raise ValidationError(f"[[server]] #{index} must be a table", field="server")
        name = str(raw.get("name", "")).strip()
        if not name or name in names:
            raise ValidationError(f"[[server]] #{index}: a unique name is required",
                                  field="server.name")
        names.add(name)
        ws_url = str(raw.get("ws_url", ""))
        if not ws_url.startswith(("ws://", "wss://")):
            raise ValidationError(f"server {name!r}: ws_url must start with ws:// or wss://",
                                  field="server.ws_url")
        token = str(raw.get("token", ""))
        if not token:
            raise ValidationError(f"server {name!r}: token is required", field="server.token")
        servers.append(ServerEntry(name=name, ws_url=ws_url, token=token,
                                   allowed=_allowed(name, raw)))
    return AgentConfig(agent_uuid=agent_uuid, servers=tuple(servers), log_level=level,
                       exec_max_character=limit)


def _allowed(name: str, raw: dict[str, Any]) -> frozenset[str]:
    if not raw.get("allow_task", False):
        return frozenset()
    listed = raw.get("allow_task_type", [])
    if listed:
        unknown = sorted(set(listed) - set(TASK_TYPES))
        if unknown:
            raise ValidationError(f"server {name!r}: unknown task type(s) {unknown}",
                                  field="server.allow_task_type")
        return frozenset(listed)
    return frozenset(t for t in TASK_TYPES if raw.get(f"allow_{t}", False))


def masked(text: str) -> str:
    """The config text with every token value replaced (never show secrets in clear)."""
    out = []
    for line in text.splitlines():
        key, sep, _ = line.partition("=")
        if sep and key.strip() == "token":
            out.append(f'{key}= "********"')
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")
