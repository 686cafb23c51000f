"""Serving the API from the daemon process: uvicorn in a thread beside the daemon's.

The main thread keeps the signals (uvicorn installs none outside the main
thread), so SIGTERM stops the API and then the daemon, gracefully.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time

import uvicorn

from transcriber.api.app import create_app
from transcriber.config import Config
from transcriber.errors import ConfigError
from transcriber.scheduler.daemon import Daemon

log = logging.getLogger("Server")


def check_exposure(config: Config) -> None:
    """Refuse an API reachable from other hosts without a token (docs/API.md, authentication)."""
    api = config.api
    if not api.enabled or api.token.get_secret_value() or api.allow_unauthenticated:
        return
    if not is_loopback(api.host):
        raise ConfigError(
            f"config error: api.host: {api.host!r} is reachable from other machines and api.token is empty; "
            "set TRANSCRIBER_API_TOKEN, or api.allow_unauthenticated: true to accept that"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback
                       for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


class ApiServer:
    def __init__(self, daemon: Daemon) -> None:
        api = daemon.config.api
        config = uvicorn.Config(
            create_app(daemon), host=api.host, port=api.port, access_log=api.access_log,
            # uvicorn installs no handlers or levels of its own: its records go through
            # the one formatter of logs.py, in the daemon's format (issue 13).
            log_config=None, log_level=None, lifespan="on", timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def start(self) -> None:
        """Return once the socket listens; OSError when it cannot (port in use)."""
        self._thread.start()
        while not self.server.started and self._thread.is_alive():
            time.sleep(0.02)
        if not self.server.started:
            raise OSError(f"the API could not listen on {self.server.config.host}:{self.server.config.port}")
        log.info("API listening on http://%s:%d", self.server.config.host, self.server.config.port)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(10.0)

