"""Every setting declared once: key, type, default, label, limits (picard options style).

The registry is the single source for the settings dialog, the CLI, the API
and validation. ``Settings`` is a plain in-memory view (pure: no database);
``app.store.settings`` persists the values. A *secret* spec holds no value at
all: it names a keyring entry (the spec's key) that ``SecretStore`` reads, so a
secret can never land in the database through the settings path.

Stored settings carry a version; ``UPGRADES`` lists functions that rewrite the
raw values from one version to the next (picard ``config_upgrade``). It is
empty today; the first rename or re-typing of a key adds a function here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from croniter import croniter

from app.core.errors import ValidationError

log = logging.getLogger(__name__)

SettingType = Literal["bool", "int", "float", "str", "choice"]
MAX_TEXT = 1000
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def check_cron(expr: str) -> None:
    """Accept a 5-field cron expression or a descriptor such as ``@daily``."""
    text = expr.strip()
    fields = text.split()
    if not (text.startswith("@") or len(fields) == 5) or not croniter.is_valid(text):
        raise ValidationError(
            f"invalid cron {expr!r}: use 5 fields (minute hour day month weekday) or @daily"
        )


def check_host(value: str) -> None:
    """A host name or address: no spaces, no scheme, no port."""
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise ValidationError(f"invalid host {value!r}")


@dataclass(frozen=True)
class SettingSpec:
    """One setting. ``minimum``/``maximum`` bound numbers; ``choices`` a choice.

    A ``secret`` spec has no value (``default`` is ``None``): its key is the
    name of the keyring entry that holds the secret.
    """

    key: str
    type: SettingType
    default: Any
    label: str
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    check: Callable[[str], None] | None = None  # extra rule for text values

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def keyring_entry(self) -> str:
        """The keyring entry name of a secret spec."""
        if not self.secret:
            raise ValidationError(f"setting {self.key!r} is not a secret", field=self.key)
        return self.key

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this spec's type, or raise ValidationError."""
        if self.secret:
            raise ValidationError(
                f"{self.key} is a secret: it is kept in the keyring, not in settings",
                field=self.key,
            )
        try:
            return self._coerce(value)
        except ValidationError as exc:
            raise ValidationError(f"{self.label}: {exc.message}", field=self.key) from None

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for APIs and generated editors (never a secret)."""
        out: dict[str, Any] = {
            "key": self.key,
            "type": self.type,
            "label": self.label,
            "help": self.help,
            "secret": self.secret,
        }
        if not self.secret:
            out["default"] = self.default
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    def _coerce(self, value: Any) -> Any:
        if self.type == "bool":
            return _to_bool(value)
        if self.type == "int":
            number: int | float = _to_int(value)
        elif self.type == "float":
            number = _to_float(value)
        else:
            return self._coerce_text(value)
        if self.minimum is not None and number < self.minimum:
            raise ValidationError(f"must be at least {_fmt(self.minimum)}, not {number}")
        if self.maximum is not None and number > self.maximum:
            raise ValidationError(f"must be at most {_fmt(self.maximum)}, not {number}")
        return number

    def _coerce_text(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValidationError(f"expected text, not {type(value).__name__}")
        text = value.strip()
        if len(text) > MAX_TEXT or not text.isprintable():
            raise ValidationError(f"up to {MAX_TEXT} printable characters")
        if self.type == "choice":
            lowered = text.lower()
            if lowered not in self.choices:
                raise ValidationError(f"{value!r} is not one of {', '.join(self.choices)}")
            return lowered
        if self.check is not None:
            self.check(text)
        return text


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValidationError(f"expected true or false, not {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValidationError(f"expected a whole number, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValidationError(f"expected a whole number, not {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValidationError(f"expected a number, not {value!r}")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ValidationError(f"expected a number, not {value!r}")
    return number


def _spec(key: str, type_: SettingType, default: Any, label: str, help_: str = "",
          **kwargs: Any) -> SettingSpec:
    return SettingSpec(key=key, type=type_, default=default, label=label, help=help_, **kwargs)


REGISTRY: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        _spec("adb.host", "str", "127.0.0.1", "adb server host", check=check_host),
        _spec("adb.port", "int", 5037, "adb server port", minimum=1, maximum=65535),
        _spec("adb.path", "str", "", "adb binary", "Empty uses the adb bundled with TaskDesk."),
        _spec("devices.allowlist", "str", "", "Device allow-list",
              "Comma-separated serials; empty allows every device."),
        _spec("demo.phones", "int", 12, "Simulated phones", "Phones in the --demo lab.",
              minimum=1, maximum=200),
        _spec("engine.lease_s", "float", 30.0, "Task lease (s)",
              "An executor renews its claim this often; an expired claim is requeued.",
              minimum=5, maximum=3600),
        _spec("engine.max_tasks_per_job", "int", 1, "Tasks per job", minimum=1, maximum=50),
        _spec("engine.device_lost_grace_s", "float", 10.0, "Device-lost grace (s)",
              "How long a vanished device may come back before its job is cancelled.",
              minimum=0, maximum=600),
        _spec("engine.battery_interval_s", "float", 60.0, "Battery refresh (s)",
              minimum=5, maximum=3600),
        _spec("engine.rate_limit_per_device", "int", 0, "Starts per device per window",
              "0 turns the per-device rate limit off.", minimum=0, maximum=100_000),
        _spec("engine.rate_window_s", "float", 3600.0, "Rate-limit window (s)",
              minimum=1, maximum=86400),
        _spec("engine.automation_concurrency", "int", 4, "Concurrent automation runs",
              minimum=1, maximum=64),
        _spec("history.retention_days", "int", 30, "Keep history (days)",
              "Finished executions older than this are deleted.", minimum=1, maximum=3650),
        _spec("history.timeout_minutes", "int", 10, "Execution timeout (minutes)",
              "A STARTED execution older than this is marked FAILURE.", minimum=1, maximum=1440),
        _spec("maintenance.cleanup_cron", "str", "0 2 * * *", "Retention cleanup schedule",
              check=check_cron),
        _spec("maintenance.timeout_sweep_cron", "str", "*/30 * * * *", "Timeout sweep schedule",
              check=check_cron),
        _spec("health.low_battery_percent", "int", 15, "Low-battery alert (%)",
              minimum=0, maximum=100),
        _spec("health.high_temperature_c", "float", 45.0, "High-temperature alert (°C)",
              minimum=20, maximum=100),
        _spec("api.bind", "str", "127.0.0.1", "API bind address",
              "Loopback unless other hosts must reach the API.", check=check_host),
        _spec("api.port", "int", 8765, "API port", minimum=1, maximum=65535),
        _spec("api.token", "str", None, "API bearer token", secret=True),
        _spec("llm.base_url", "str", "", "LLM endpoint",
              "OpenAI-compatible base URL for LLM goals; empty disables them."),
        _spec("llm.model", "str", "", "LLM model"),
        _spec("llm.api_key", "str", None, "LLM API key", secret=True),
        _spec("gui.theme", "choice", "system", "Theme", choices=("system", "light", "dark")),
        _spec("gui.tile_thumbnails", "bool", False, "Screen thumbnails on tiles"),
    )
}


def get_spec(key: str) -> SettingSpec:
    """The spec of ``key``; ValidationError for an unknown key."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise ValidationError(f"unknown setting {key!r}", field=key) from None


def validate(key: str, value: Any) -> Any:
    """Coerce ``value`` for ``key`` or raise ValidationError (unknown key, bad value)."""
    return get_spec(key).validate(value)


# -- versioned upgrades ---------------------------------------------------------------

Upgrade = Callable[[dict[str, Any]], None]
"""Rewrites raw stored values in place from version N-1 to N."""

UPGRADES: tuple[Upgrade, ...] = ()
"""Upgrade ``i`` moves stored settings from version ``i`` to ``i + 1``."""

VERSION_KEY = "meta.settings_version"


def current_version(upgrades: Sequence[Upgrade] = UPGRADES) -> int:
    return len(upgrades)


def upgrade_values(
    raw: Mapping[str, Any], version: int, upgrades: Sequence[Upgrade] = UPGRADES
) -> tuple[dict[str, Any], int]:
    """Run every upgrade after ``version`` on a copy of ``raw``.

    Returns:
        The upgraded values and the version they are now at. Values written by
        a newer TaskDesk (``version`` beyond the list) are returned unchanged.
    """
    values = dict(raw)
    if version < 0:
        raise ValidationError(f"invalid settings version {version}")
    for step in range(version, len(upgrades)):
        upgrades[step](values)
        log.info("settings upgraded to version %d", step + 1)
    return values, max(version, len(upgrades))


class Settings:
    """Effective settings: registry defaults overlaid with validated values.

    Pure and in-memory; ``app.store.settings`` loads and saves the values.
    """

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {}
        self.problems: list[str] = []
        for key, value in (values or {}).items():
            spec = REGISTRY.get(key)
            if spec is None or spec.secret:
                continue  # a removed setting, or bookkeeping such as the version
            try:
                self._values[key] = spec.validate(value)
            except ValidationError as exc:
                # A hand-edited or outdated value must not stop the app: use the
                # default and say so.
                self.problems.append(f"{exc.message} (using the default)")
                log.warning("ignoring stored setting %s: %s", key, exc.message)

    def get(self, key: str) -> Any:
        spec = get_spec(key)
        if spec.secret:
            raise ValidationError(f"{key} is a secret: read it through the secret store",
                                  field=key)
        return self._values.get(key, spec.default)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def get_int(self, key: str) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"setting {key} is not an int")
        return value

    def get_float(self, key: str) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"setting {key} is not a number")
        return float(value)

    def get_bool(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise TypeError(f"setting {key} is not a bool")
        return value

    def get_str(self, key: str) -> str:
        value = self.get(key)
        if not isinstance(value, str):
            raise TypeError(f"setting {key} is not text")
        return value

    def set(self, key: str, value: Any) -> Any:
        """Validate and keep ``value``; returns the coerced value."""
        coerced = validate(key, value)
        self._values[key] = coerced
        return coerced

    def reset(self, key: str) -> None:
        get_spec(key)
        self._values.pop(key, None)

    def overrides(self) -> dict[str, Any]:
        """Values set explicitly (what the store persists)."""
        return dict(self._values)

    def as_dict(self, keys: Iterable[str] | None = None) -> dict[str, Any]:
        """Every non-secret setting with its effective value."""
        wanted = REGISTRY.keys() if keys is None else keys
        return {k: self.get(k) for k in wanted if not get_spec(k).secret}
