"""Real speech, synthesised once per session with espeak-ng."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ENGLISH = "The quick brown fox jumps over the lazy dog. Please send the report by Friday morning."
RUSSIAN = "Спасибо за помощь, до свидания. Сегодня хорошая погода. Мой номер телефона не работает."


@dataclass(frozen=True)
class Speech:
    path: Path
    text: str


def synthesise(path: Path, text: str, voice: str) -> Path:
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-g", "3", "-w", str(wav), text], check=True)
    if path.suffix != ".wav":
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), str(path)], check=True)
        wav.unlink()
    return path


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert shutil.which("espeak-ng"), "espeak-ng is installed by scripts/setup.sh"
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def english(speech_dir: Path) -> Speech:
    return Speech(synthesise(speech_dir / "english.mp3", ENGLISH, "en"), ENGLISH)


@pytest.fixture(scope="session")
def russian(speech_dir: Path) -> Speech:
    return Speech(synthesise(speech_dir / "russian.ogg", RUSSIAN, "ru"), RUSSIAN)


@pytest.fixture(scope="session")
def long_russian(speech_dir: Path) -> Speech:
    """About 90 s of speech: long enough to kill something mid-transcription."""
    text = " ".join([RUSSIAN] * 14)
    return Speech(synthesise(speech_dir / "long-russian.wav", text, "ru"), text)


@pytest.fixture(scope="session")
def very_long_russian(speech_dir: Path) -> Speech:
    """About 3 minutes: its transcription takes far longer than a short timeout."""
    text = " ".join([RUSSIAN] * 28)
    return Speech(synthesise(speech_dir / "very-long-russian.wav", text, "ru"), text)
