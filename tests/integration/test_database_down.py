"""/health's `database` turns `down` as soon as a connection attempt fails, not
when a waiting write gives up after the pool's timeout (issue 13, point 12)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from tests.postgres import PostgresServer
from transcriber.errors import DatabaseUnavailable
from transcriber.mirror.database import Database


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.remove()


def test_the_first_failed_connection_attempt_is_reported_at_once(own_postgres: PostgresServer) -> None:
    unreachable = threading.Event()
    database = Database(own_postgres.url(), pool_timeout=60, on_unreachable=unreachable.set)
    database.open()
    try:
        database.migrate()
        assert database.task_versions() == {}  # connected: the pool holds a live connection
        own_postgres.stop()
        outcome: list[BaseException | None] = []

        def query() -> None:
            try:
                database.task_versions()
                outcome.append(None)
            except DatabaseUnavailable as exc:
                outcome.append(exc)

        waiting = threading.Thread(target=query, daemon=True)
        waiting.start()
        wait_for(unreachable.is_set, timeout=20, what="on_unreachable after the first failed attempt")
        assert waiting.is_alive() and not outcome, "reported only when the waiting query gave up"
    finally:
        database.close()
