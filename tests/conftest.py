from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_engine import FakeEngine
from tests.helpers import make_config
from tests.postgres import PostgresServer
from transcriber.api.server import ApiServer
from transcriber.engine.base import EngineFactory
from transcriber.scheduler.daemon import Daemon


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


@dataclass
class ApiHarness:
    daemon: Daemon
    client: httpx.Client
    shared: Path


@pytest.fixture
def start_api(tmp_path: Path, start_daemon) -> Iterator[Callable[..., ApiHarness]]:
    """A daemon (fake engine unless told) serving its API on a free loopback port."""
    servers: list[ApiServer] = []
    clients: list[httpx.Client] = []

    def start(overrides: dict[str, Any] | None = None, engine: EngineFactory = FakeEngine,
              headers: dict[str, str] | None = None) -> ApiHarness:
        api = {"enabled": True, "port": free_port(), "file_wait_attempts": 3, "file_wait_interval": 0.1}
        merged = {**(overrides or {})}
        merged["api"] = {**api, **merged.get("api", {})}
        daemon = start_daemon(merged, engine)
        server = ApiServer(daemon)
        server.start()
        servers.append(server)
        client = httpx.Client(base_url=f"http://127.0.0.1:{daemon.config.api.port}", timeout=30, headers=headers)
        clients.append(client)
        return ApiHarness(daemon, client, daemon.config.shared_directory)

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.init()
    server.start()
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def database_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database for each test."""
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:50]
    return postgres_server.create_database(f"{name}_{uuid.uuid4().hex[:8]}")
