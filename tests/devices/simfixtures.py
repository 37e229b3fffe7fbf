"""Reusable fixtures for tests that need simulated phones behind a real adb server.

Load them as a plugin from your test module (no imports, so ruff stays quiet)::

    pytest_plugins = ("tests.devices.simfixtures",)

- ``sim_lab``: a healthy 12-phone :class:`SimLab`, shared by the whole session
  (started once, ~0.3 s) and reset before each test: every phone plugged in,
  authorised, no latency or failures, adb server up. Tests may unplug, kill
  the server, etc.; the next test gets a healthy lab again. Do not ``stop()`` it.
- ``sim_lab_factory``: ``make(n_phones=3, **SimLab kwargs) -> SimLab`` for a
  private lab (own adb server), stopped at the end of the test.
- ``adb_client``: an ``adbutils.AdbClient`` pointed at ``sim_lab``'s server.

No test may let adbutils talk to port 5037: always pass host and port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import adbutils
import pytest

from app.devices.sim import SimLab

SESSION_LAB_PHONES = 12


_shared_lab: SimLab | None = None


def shared_sim_lab(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> SimLab:
    """The session's shared lab, started on first use and stopped when pytest ends.

    Kept outside fixture scoping so that a test module only has to import
    ``sim_lab`` (fixtures it depends on must otherwise be imported too).
    """
    global _shared_lab
    if _shared_lab is None:
        lab = SimLab(SESSION_LAB_PHONES, tmp_path_factory.mktemp("simlab"))
        lab.start()
        config.add_cleanup(lab.stop)
        _shared_lab = lab
    return _shared_lab


@pytest.fixture
def sim_lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SimLab:
    """The shared lab, reset to healthy before the test."""
    lab = shared_sim_lab(request.config, tmp_path_factory)
    lab.reset()
    return lab


@pytest.fixture
def sim_lab_factory(tmp_path: Path) -> Iterator[Callable[..., SimLab]]:
    """Make private labs for tests that need special settings; all are stopped afterwards."""
    labs: list[SimLab] = []

    def make(n_phones: int = 3, **kwargs: Any) -> SimLab:
        lab = SimLab(n_phones, tmp_path / f"lab{len(labs)}", **kwargs)
        labs.append(lab)
        lab.start()
        return lab

    yield make
    for lab in labs:
        lab.stop()


@pytest.fixture
def adb_client(sim_lab: SimLab) -> adbutils.AdbClient:
    """An adbutils client for the shared lab's private adb server."""
    return adbutils.AdbClient(host=sim_lab.adb_host, port=sim_lab.adb_port)
