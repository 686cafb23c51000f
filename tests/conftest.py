from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_engine import FakeEngine
from tests.helpers import make_config
from transcriber.daemon import Daemon
from transcriber.engine import EngineFactory


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons on ``tmp_path/shared`` (fake engine unless told); all stop at teardown."""
    started: list[Daemon] = []

    def start(overrides: dict[str, Any] | None = None, engine: EngineFactory = FakeEngine) -> Daemon:
        daemon = Daemon(make_config(tmp_path, overrides), engine_factory=engine)
        daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop(grace_seconds=0)


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    return folder
