"""One log format for every line a process prints (issue 13, point 15): Python
warnings, a library's own handler (WhisperX's, in another format), print(), a
traceback, and what native code (CTranslate2) writes straight to file descriptor 2."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from tests.helpers import MODELS_DIR, REPO

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] \[[^\]]+\] .+$")

CHILD = textwrap.dedent(f"""
    import logging, os, warnings
    from transcriber.logs import capture_native_output, configure_logging, quiet_libraries
    configure_logging("INFO")
    capture_native_output()
    from whisperx.log_utils import get_logger  # installs WhisperX's own handler and format
    quiet_libraries()
    get_logger("whisperx.asr").warning("from the whisperx logger")
    get_logger("whisperx.vads")  # a later module asks again: no second handler of its own
    logging.getLogger("whisperx.vads").warning("from a later whisperx module")
    warnings.warn("a python warning")
    print("a stray print", flush=True)
    os.write(2, b"raw bytes on fd 2\\n")
    import ctranslate2
    ctranslate2.set_log_level(logging.INFO)
    ctranslate2.models.Whisper({str(MODELS_DIR / "tiny.en")!r}, device="cpu", compute_type="default")
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("Test").exception("a traceback")
    logging.getLogger("Test").info("done")
    import time; time.sleep(0.5)  # the reader thread logs the last lines
""")


def test_every_kind_of_output_comes_out_in_the_log_format() -> None:
    done = subprocess.run([sys.executable, "-W", "always", "-c", CHILD], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    strays = [line for line in lines + done.stderr.splitlines() if not LINE.match(line)]
    assert not strays, "\n".join(strays)
    text = done.stdout
    for expected in ("[whisperx.asr] from the whisperx logger", "[whisperx.vads] from a later whisperx module",
                     "[py.warnings]", "a python warning", "[Native] a stray print", "[Native] raw bytes on fd 2",
                     "[Native] [", "ctranslate2", "] [Test] ZeroDivisionError: division by zero",
                     "[Test] done"):
        assert expected in text, (expected, text)
