"""Engine fixtures: a real simulated lab (real adb server) and real engines over it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from app.core.paths import Paths
from app.engine.config import EngineConfig
from app.engine.engine import Engine


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Twelve simulated phones behind a private adb server, shared by a module's tests.

    Tests that unplug phones or restart the server must put things back."""
    from app.devices.sim import SimLab

    lab = SimLab(12, tmp_path_factory.mktemp("lab"), seed=7)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Any]:
    """A private lab for tests that break things (unplug, server restart)."""
    from app.devices.sim import SimLab

    lab = SimLab(4, tmp_path / "lab", seed=11)
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


EngineFactory = Callable[..., contextlib.AbstractAsyncContextManager[Engine]]


@pytest_asyncio.fixture
async def make_engine(tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Build started engines; every engine is stopped at the end of the test."""
    from app.devices.adb import AdbProvider

    started: list[Engine] = []

    @contextlib.asynccontextmanager
    async def factory(lab: Any | None = None, *, data_dir: Path | None = None,
                      expect_devices: int | None = None,
                      **config: Any) -> AsyncIterator[Engine]:
        provider = AdbProvider(lab.adb_host, lab.adb_port) if lab is not None else None
        defaults: dict[str, Any] = {"lease_s": 10.0, "device_lost_grace_s": 1.0,
                                    "battery_interval_s": 3600.0, "external_poll_s": 0.2}
        defaults.update(config)
        engine = Engine(paths=Paths(data_dir or tmp_path / f"data{len(started)}"),
                        provider=provider, config=EngineConfig(**defaults))
        await engine.start()
        started.append(engine)
        if lab is not None:
            online = len(lab.serials) if expect_devices is None else expect_devices
            # Online, not idle: a restarted engine may pick up pending work at once.
            ready = await engine.wait_until(
                lambda: sum(v.record.state.value == "online"
                            for v in engine.device_views()) >= online, timeout=15)
            assert ready, "the lab's phones did not come online"
        try:
            yield engine
        finally:
            await engine.stop()

    yield factory
    for engine in started:
        await engine.stop()
