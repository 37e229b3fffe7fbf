"""The kind registry: lookup, task validation per kind, and plugin discovery through
real entry points (a dist-info directory on sys.path, as pip would install it)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ValidationError
from app.core.payload import MAX_PAYLOAD_BYTES
from app.core.targets import Target
from app.core.taskspec import TaskSpec
from app.engine.kinds import KindRegistry, TaskKind, default_registry
from app.engine.kinds.base import RunContext
from tests.engine.kindctx import KindTestContext

PLUGIN_DIR = Path(__file__).parent / "plugin_example"
TEST_GROUP = "taskdesk.test_kinds"

BUILTINS = {
    "adb.shell", "adb.install", "adb.uninstall", "adb.app_start", "adb.app_stop",
    "adb.screenshot", "adb.push", "adb.pull", "adb.reboot", "local.execute",
    "local.http_request", "demo.capture",
}


@pytest.fixture(scope="module")
def registry() -> KindRegistry:
    return default_registry(load_plugins=False)


def spec(kind: str, payload: dict[str, Any] | None = None, target: str = "any") -> TaskSpec:
    return TaskSpec(kind=kind, payload=payload or {}, target=Target.parse(target))


def refused(registry: KindRegistry, task: TaskSpec) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        registry.validate(task)
    return info.value


def write_dist(root: Path, name: str, entry_points: str) -> None:
    """Install a distribution's metadata the way pip does (a dist-info directory)."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_default_registry_has_every_builtin_kind(registry: KindRegistry) -> None:
    assert set(registry.names()) == BUILTINS
    described = {d["name"]: d for d in registry.describe_all()}
    assert described["local.execute"]["targets"] == ["host"]
    assert described["adb.shell"]["source"] == "builtin"
    fields = {f["name"]: f for f in described["adb.shell"]["fields"]}
    assert fields["command"]["required"] is True and fields["check"]["default"] is True


def test_unknown_kind_is_refused_on_the_kind_field(registry: KindRegistry) -> None:
    error = refused(registry, spec("nope.kind"))
    assert error.field == "kind" and error.message == "unknown task kind 'nope.kind'"
    with pytest.raises(ValidationError, match="unknown task kind 'x.y'"):
        registry.get("x.y")


def test_target_must_suit_the_kind(registry: KindRegistry) -> None:
    error = refused(registry, spec("local.execute", {"argv": ["true"]}, "device:SIM0001"))
    assert error.field == "target"
    assert "cannot run on a device target" in error.message and "host" in error.message
    error = refused(registry, spec("adb.shell", {"command": "id"}, "host"))
    assert error.field == "target" and "any, device, selector" in error.message
    agent = "agent:" + "12345678-1234-5678-1234-567812345678"
    assert refused(registry, spec("adb.reboot", {}, agent)).field == "target"


def test_validate_returns_the_normalised_payload(registry: KindRegistry) -> None:
    task = registry.validate(spec("adb.shell", {"command": "getprop"}, "tags:lab"))
    assert task.payload == {"command": "getprop", "check": True, "output_limit": 65536}
    task = registry.validate(spec("local.http_request", {"url": "http://127.0.0.1/x",
                                                          "method": "post"}, "host"))
    assert task.payload["method"] == "POST" and task.payload["timeout_s"] == 30.0


def test_generic_task_rules_still_apply(registry: KindRegistry) -> None:
    big = {"command": "x" * (MAX_PAYLOAD_BYTES + 10)}
    assert refused(registry, spec("adb.shell", big)).field == "payload"
    bad_queue = TaskSpec(kind="adb.reboot", queue="no spaces")
    assert refused(registry, bad_queue).field == "queue"


@pytest.mark.parametrize(
    ("kind", "payload", "target", "field", "words"),
    [
        ("adb.shell", {}, "any", "command", "is required"),
        ("adb.shell", {"command": "  "}, "any", "command", "must not be empty"),
        ("adb.shell", {"command": "id", "timeout_s": 0}, "any", "timeout_s", "at least 0.1"),
        ("adb.shell", {"command": "id", "check": "yes"}, "any", "check", "true or false"),
        ("adb.shell", {"command": "id", "shell": "bash"}, "any", "shell", "unknown payload"),
        ("adb.install", {"apk": ""}, "any", "apk", "must not be empty"),
        ("adb.install", {}, "any", "apk", "is required"),
        ("adb.uninstall", {"package": "not a package"}, "any", "package", "package name"),
        ("adb.uninstall", {"package": "com..x"}, "any", "package", "package name"),
        ("adb.uninstall", {"package": "com.x; reboot"}, "any", "package", "package name"),
        ("adb.app_start", {"package": "com.x", "activity": "Main Activity"}, "any",
         "activity", "class name"),
        ("adb.app_stop", {"package": "nodots"}, "any", "package", "package name"),
        ("adb.push", {"local": "/tmp/a", "remote": "sdcard/a"}, "any", "remote", "absolute"),
        ("adb.push", {"local": "/tmp/a"}, "any", "remote", "is required"),
        ("adb.pull", {"remote": "/sdcard/"}, "any", "remote", "must name a file"),
        ("adb.pull", {"remote": "/sdcard/a", "local": "../../etc/x"}, "any", "local",
         "inside the artifacts folder"),
        ("local.execute", {"argv": []}, "host", "argv", "must not be empty"),
        ("local.execute", {"argv": "ls -l"}, "host", "argv", "list of strings"),
        ("local.execute", {"argv": [""]}, "host", "argv", "must start with a program"),
        ("local.execute", {"argv": ["ls"], "env": {"A": 1}}, "host", "env", "strings"),
        ("local.execute", {"argv": ["ls"], "env": ["A=1"]}, "host", "env", "strings"),
        ("local.execute", {"argv": ["ls"], "output_limit": 10}, "host", "output_limit",
         "at least 256"),
        ("local.http_request", {"url": "ftp://127.0.0.1/x"}, "host", "url", "http"),
        ("local.http_request", {"url": "http://"}, "host", "url", "with a host"),
        ("local.http_request", {"url": "http://h/", "method": "BREW"}, "host", "method",
         "must be one of"),
        ("local.http_request", {"url": "http://h/", "headers": {"X": 1}}, "host", "headers",
         "header names"),
        ("local.http_request", {"url": "http://h/", "headers": {"X": "a\r\nB: c"}}, "host",
         "headers", "single-line"),
        ("local.http_request", {"url": "http://h/", "body": "a", "body_base64": "YQ=="},
         "host", "body_base64", "mutually exclusive"),
        ("local.http_request", {"url": "http://h/", "body_base64": "***"}, "host",
         "body_base64", "not valid base64"),
        ("demo.capture", {"steps": 0}, "any", "steps", "at least 1"),
        ("demo.capture", {"steps": 51}, "any", "steps", "at most 50"),
        ("demo.capture", {"step_ms": 20000}, "any", "step_ms", "at most 10000"),
        ("demo.capture", {"package": "x"}, "any", "package", "package name"),
    ],
)
def test_invalid_payloads_are_refused_with_a_clear_message(
    registry: KindRegistry, kind: str, payload: dict[str, Any], target: str, field: str,
    words: str,
) -> None:
    error = refused(registry, spec(kind, payload, target))
    assert error.field == field, error.message
    assert words in error.message


def test_register_refuses_duplicates_and_bad_names() -> None:
    registry = default_registry(load_plugins=False)
    first = registry.get("adb.shell")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(type(first)())

    class BadName(TaskKind):
        name = "NoDots"

        async def run(self, ctx: RunContext, payload: dict[str, Any]) -> None:
            return None

    with pytest.raises(ValueError, match="invalid"):
        registry.register(BadName())
    with pytest.raises(TypeError):
        registry.register("adb.shell")  # type: ignore[arg-type]


def test_plugin_kind_is_discovered_through_its_entry_point(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    registry = default_registry()
    assert "example.echo" in registry.names(), registry.plugin_errors
    assert registry.source("example.echo") == "plugin:taskdesk-example-plugin"
    task = registry.validate(spec("example.echo", {"text": "hi"}, "host"))
    assert refused(registry, spec("example.echo", {}, "host")).field == "text"

    ctx = KindTestContext(tmp_path, kind="example.echo")
    result = asyncio.run(registry.get("example.echo").run(ctx, task.payload))
    assert result == {"echo": "hi"}
    assert ctx.progress_calls[-1]["step"] == "echo"


def test_broken_plugins_are_reported_and_the_rest_still_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "half_plugin.py").write_text(
        "from app.engine.kinds.base import TaskKind\n"
        "NOT_A_KIND = object()\n"
        "class Abstract(TaskKind):\n    name = 'half.abstract'\n"
        "raise_me = None\n"
    )
    (tmp_path / "crashing_plugin.py").write_text("raise RuntimeError('plugin import boom')\n")
    write_dist(tmp_path, "broken_kinds", (
        f"[{TEST_GROUP}]\n"
        "missing_module = no_such_module_xyz:Kind\n"
        "missing_attr = half_plugin:Nothing\n"
        "not_a_kind = half_plugin:NOT_A_KIND\n"
        "abstract = half_plugin:Abstract\n"
        "crashing = crashing_plugin:Kind\n"
        "echo = taskdesk_example_plugin:EchoKind\n"
        "echo_again = taskdesk_example_plugin:EchoKind\n"
        "shadows_builtin = tests.engine.test_kinds_registry:ShadowShell\n"
    ))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    registry = default_registry(load_plugins=False)
    with caplog.at_level(logging.WARNING, logger="app.engine.kinds.registry"):
        errors = registry.load_entry_points(TEST_GROUP)

    by_name = {e.split("'")[1]: e for e in errors}
    assert set(by_name) == {"missing_module", "missing_attr", "not_a_kind", "abstract",
                            "crashing", "echo_again", "shadows_builtin"}, errors
    assert "ModuleNotFoundError" in by_name["missing_module"]
    assert "AttributeError" in by_name["missing_attr"]
    assert "not a TaskKind subclass or instance" in by_name["not_a_kind"]
    assert "Can't instantiate abstract class" in by_name["abstract"]
    assert "plugin import boom" in by_name["crashing"]
    assert "already registered" in by_name["echo_again"]
    assert "already registered" in by_name["shadows_builtin"]
    assert "from broken_kinds 0.1" in by_name["crashing"]
    # The good plugin still loaded, the built-in was not replaced, and all was logged.
    assert "example.echo" in registry.names()
    assert registry.source("adb.shell") == "builtin"
    assert registry.plugin_errors == errors
    assert len([r for r in caplog.records if "plugin skipped" in r.getMessage()]) == 7


class ShadowShell(TaskKind):
    """A plugin trying to take over a built-in name (must be refused)."""

    name = "adb.shell"

    async def run(self, ctx: RunContext, payload: dict[str, Any]) -> None:
        return None


def test_a_kind_instance_is_accepted_as_a_plugin_object(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "instance_plugin.py").write_text(
        "from app.engine.kinds.base import TaskKind\n"
        "class Ping(TaskKind):\n"
        "    name = 'inst.ping'\n"
        "    async def run(self, ctx, payload):\n"
        "        return 'pong'\n"
        "PING = Ping()\n"
    )
    write_dist(tmp_path, "instance_kinds", f"[{TEST_GROUP}]\nping = instance_plugin:PING\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = KindRegistry()
    assert registry.load_entry_points(TEST_GROUP) == []
    assert registry.names() == ["inst.ping"]
    assert registry.source("inst.ping") == "plugin:instance_kinds"
