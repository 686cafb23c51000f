"""Engines for tests, at the engine boundary only.

The behaviour is chosen by the audio file's name, so the same fake serves
in-process daemons and daemons started as subprocesses.  It is a whole
leading token and ``SEPARATOR``, which no ordinary test name contains:
``named("crash", "e.wav")`` is ``crash--e.wav``.  A name without the
separator is an ordinary file (``slow-copy.wav`` included); a token that is
not one of ``BEHAVIOURS`` is an error, raised by :func:`named` in the test
and by the engine in the worker (a failed attempt that says why):

- ``crash--``: the worker process dies (``os._exit``) on every attempt;
- ``abort--``: the worker writes last words to fd 2 and aborts, as a native
  crash would (``NoisyEngine`` makes its noise first);
- ``hang--``: sleeps far past any test timeout;
- ``flaky--``: raises an unclassified engine error on every attempt;
- ``slow--``: takes ``SLOW_SECONDS`` in steps, reporting progress;
- ``bloat--``: keeps ``BLOAT_MB`` of memory alive after it returns (a leak);
- an ordinary name: nothing special.

Whatever the behaviour, a file that is transcribed has its whole stem as its
transcript (``slow--call`` for ``slow--call.wav``), and its speech is where its
audio is not silent (``speech_of``: a tone, a pause, a tone has two stretches).

:class:`FailingWhileMarkedEngine` fails every file while a marker file is in
the shared folder (a forced re-run of a file that once succeeded).

Audio still goes through the real ffprobe/ffmpeg in the worker, so broken
files fail exactly as they would with WhisperX.
"""

from __future__ import annotations

import os
import time

import numpy as np

from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.domain.transcript import Transcript
from transcriber.engine.audio import SAMPLE_RATE, Clip
from transcriber.engine.base import EngineOptions, ProgressReporter

SEPARATOR = "--"
BEHAVIOURS = frozenset({"crash", "abort", "hang", "flaky", "slow", "bloat"})
SLOW_SECONDS = 3.0
FRAME = SAMPLE_RATE // 100  # the fake speech detector's frames: 10 ms
SILENT = 0.01  # their RMS under this is silence (write_tone's tones are 0.24)
BLOAT_MB = 400
_leaked: list[bytearray] = []


class UnknownBehaviour(ValueError):
    """A name that asks the fake engine for a behaviour it does not have."""


def named(behaviour: str, filename: str) -> str:
    """``filename`` (a plain name, no folder) with ``behaviour`` for the fake engine."""
    if behaviour not in BEHAVIOURS:
        raise UnknownBehaviour(f"no fake-engine behaviour {behaviour!r}; one of {sorted(BEHAVIOURS)}")
    if SEPARATOR in filename or "/" in filename:
        raise ValueError(f"{filename!r}: a plain name without {SEPARATOR!r} or folders")
    return f"{behaviour}{SEPARATOR}{filename}"


def behaviour_of(filename: str) -> str | None:
    """The behaviour that ``filename`` (its last component) asks for; None for an ordinary name."""
    token, separator, rest = filename.rsplit("/", 1)[-1].partition(SEPARATOR)
    if not separator:
        return None
    if token not in BEHAVIOURS or not rest:
        raise UnknownBehaviour(f"{filename!r} asks for no fake-engine behaviour; one of {sorted(BEHAVIOURS)}")
    return token


class FakeEngine:
    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self._loaded: set[tuple[str, str, str]] = set()

    @staticmethod
    def verify(settings: TranscriptionSettings, options: EngineOptions) -> None:
        return None

    def is_loaded(self, settings: TranscriptionSettings) -> bool:
        return settings.engine_key() in self._loaded

    def load(self, settings: TranscriptionSettings) -> float:
        self._loaded.add(settings.engine_key())
        return 0.0

    def loaded_models(self) -> list[str]:
        return ["/".join(key) for key in self._loaded]

    def unload(self) -> None:
        self._loaded.clear()

    def transcribe(self, clip: Clip, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript:
        name = clip.path.name
        behaviour = behaviour_of(name)
        self.load(settings)
        report(Stage.TRANSCRIBING, 0.0)
        if behaviour == "crash":
            os._exit(3)
        if behaviour == "abort":
            os.write(2, b"last words before the crash\n")
            os.abort()
        if behaviour == "hang":
            time.sleep(3600)
        if behaviour == "flaky":
            raise RuntimeError("simulated engine failure")
        if behaviour == "bloat":
            _leaked.append(bytearray(b"x" * (BLOAT_MB * 2**20)))
        if behaviour == "slow":
            for step in range(10):
                time.sleep(SLOW_SECONDS / 10)
                report(Stage.TRANSCRIBING, (step + 1) * 10.0)
        stem = name.rsplit(".", 1)[0]
        segments = [{"start": 0.0, "end": round(clip.seconds, 3), "text": stem}]
        if settings.diarize:  # two speakers: the first half of the name's words, then the rest
            words = stem.split()
            half, middle = max(len(words) // 2, 1), round(clip.seconds / 2, 3)
            segments = [{"start": 0.0, "end": middle, "text": " ".join(words[:half]), "speaker": "SPEAKER_00"},
                        {"start": middle, "end": round(clip.seconds, 3), "text": " ".join(words[half:]),
                         "speaker": "SPEAKER_01"}]
        return Transcript(
            text=stem, language=settings.language, segments=segments, model=settings.model_size, confidence=0.9,
            speech=speech_of(clip.samples),
        )


def speech_of(samples: np.ndarray) -> list[tuple[float, float]]:
    """The stretches of 10 ms frames that are not silent, in seconds: the fake's speech detector."""
    frames = samples[:samples.size // FRAME * FRAME].reshape(-1, FRAME)
    loud = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)) >= SILENT
    edges = np.flatnonzero(np.diff(np.concatenate([[False], loud, [False]]).astype(np.int8)))
    return [(round(int(start) * FRAME / SAMPLE_RATE, 3), round(int(end) * FRAME / SAMPLE_RATE, 3))
            for start, end in zip(edges[::2], edges[1::2], strict=True)]


class SlowStartingEngine(FakeEngine):
    """Builds slowly, like a worker importing torch on a busy machine."""

    STARTUP_SECONDS = 6.0

    def __init__(self, options: EngineOptions) -> None:
        time.sleep(self.STARTUP_SECONDS)
        super().__init__(options)


class DyingAtStartEngine(FakeEngine):
    """A worker that exits as soon as it starts, as every worker did in the image
    whose daemon ran as pid 1 (issue 13)."""

    def __init__(self, options: EngineOptions) -> None:
        os._exit(0)


class FailingWhileMarkedEngine(FakeEngine):
    """Fails every file (an unclassified engine error, so retried, then to review)
    while ``MARKER`` exists beside the audio: a file that once succeeded fails on
    its forced re-run (issue 13).  The marker is a dotfile, which the watcher ignores."""

    MARKER = ".fail-engine"

    def transcribe(self, clip: Clip, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript:
        if (clip.path.parent / self.MARKER).exists():
            report(Stage.TRANSCRIBING, 0.0)
            raise RuntimeError("simulated engine failure while the marker exists")
        return super().transcribe(clip, settings, report)


class NoisyEngine(FakeEngine):
    """Writes every kind of output a real engine does besides logging: WhisperX's own
    logger, a Python warning, print(), raw bytes and CTranslate2's native log on fd 2;
    then behaves as :class:`FakeEngine` (``abort--`` files: last words, and abort)."""

    def transcribe(self, clip: Clip, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript:
        import logging
        import warnings
        from pathlib import Path

        import ctranslate2
        from whisperx.log_utils import get_logger

        from transcriber.logs import quiet_libraries

        quiet_libraries()
        get_logger("whisperx.asr").warning("from the whisperx logger")
        warnings.warn("a python warning", stacklevel=1)
        print("a stray print", flush=True)
        os.write(2, b"".join(b"native line %d\n" % n for n in range(5000)))  # more than a pipe holds
        ctranslate2.set_log_level(logging.INFO)
        models = Path(__file__).resolve().parent.parent / "models"
        ctranslate2.models.Whisper(str(models / "tiny.en"), device="cpu", compute_type="default")
        return super().transcribe(clip, settings, report)
