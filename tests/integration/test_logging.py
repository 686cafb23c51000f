"""One log format for every line the daemon prints (issue 13, point 15): a library's
own handler (WhisperX's, in another format), Python warnings, print(), tracebacks,
and what the worker's native code (CTranslate2, a crash) writes to its fds 1 and 2,
which the daemon reads and logs."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import REPO, write_tone

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] \[[^\]]+\] .+$")

DAEMON_SIDE = textwrap.dedent("""
    import logging, sys
    from pathlib import Path
    from tests.fake_engine import NoisyEngine
    from tests.helpers import make_config
    from transcriber.scheduler.daemon import default_settings, engine_options, worker_limits
    from transcriber.errors import JobError
    from transcriber.logs import configure_logging
    from transcriber.worker.handle import run_once
    configure_logging("INFO")
    folder, audio = Path(sys.argv[1]), Path(sys.argv[2])
    config = make_config(folder)
    try:
        run_once(NoisyEngine, engine_options(config), worker_limits(config), audio, default_settings(config), 60)
        logging.getLogger("Test").info("done")
    except JobError as exc:
        logging.getLogger("Test").error("failed: %s: %s", exc.code, exc.message)
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("Test").exception("a traceback")
""")


def run(tmp_path: Path, name: str) -> str:
    audio = write_tone(tmp_path / name)
    done = subprocess.run([sys.executable, "-W", "always", "-c", DAEMON_SIDE, str(tmp_path), str(audio)],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    strays = [line for line in done.stdout.splitlines() + done.stderr.splitlines() if not LINE.match(line)]
    assert not strays, "lines outside the log format:\n" + "\n".join(strays[:20])
    return done.stdout


def test_every_kind_of_worker_output_comes_out_in_the_log_format(tmp_path: Path) -> None:
    text = run(tmp_path, "noisy.wav")
    for expected in ("[whisperx.asr] from the whisperx logger", "[py.warnings]", "a python warning",
                     "[oneshot-worker] a stray print", "[oneshot-worker] native line 4999", "[ctranslate2]",
                     "] [Test] ZeroDivisionError: division by zero", "[Test] done"):
        assert expected in text, expected


def test_a_crashing_workers_last_words_are_logged(tmp_path: Path) -> None:
    text = run(tmp_path, "abort--noisy.wav")
    assert "[oneshot-worker] last words before the crash" in text
    assert "[ERROR] [Test] failed: worker_crashed" in text
    assert "Fatal Python error: Aborted" in text  # faulthandler's report, through the same pipe
