"""The real daemon process (CLI, signals, lock, API) with the fake engine, for fault-injection tests.

    python -m tests.reliability.fake_daemon --config CONFIG

Tests that kill, stop or race whole daemon processes start it this way, so
the faults hit exactly what ``transcriber run`` does, minus WhisperX.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.fake_engine import FakeEngine
from transcriber.cli import run_daemon
from transcriber.config import load_config
from transcriber.logs import configure_logging


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    config = load_config(parser.parse_args().config)
    configure_logging(config.logging.level, to_stderr=False, access_log=config.api.access_log)
    return run_daemon(config, FakeEngine)


if __name__ == "__main__":
    sys.exit(main())
