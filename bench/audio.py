"""Benchmark audio, synthesised with espeak-ng and sox (no downloads)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SENTENCES = [
    "Please call me back about the delivery tomorrow morning.",
    "The invoice number is missing from the last order.",
    "We need two more chairs in the meeting room today.",
    "My internet connection has been down since Monday.",
    "Can you confirm the address for the new account?",
    "The driver will arrive between ten and eleven.",
    "I would like to cancel my subscription, please.",
    "Thank you for waiting, your call is important to us.",
    "The package was left at the front door yesterday.",
    "Our office is closed on public holidays this month.",
]


def clip(path: Path, text: str, seconds: float | None = None) -> Path:
    """``text`` spoken in English; padded with silence or cut to ``seconds`` when given."""
    raw = path.with_name(f"raw-{path.name}")
    subprocess.run(["espeak-ng", "-v", "en", "-s", "130", "-w", str(raw), text], check=True)
    if seconds is None:
        raw.rename(path)
    else:
        length = str(seconds)
        subprocess.run(["sox", "-V1", str(raw), str(path), "pad", "0", length, "trim", "0", length], check=True)
        raw.unlink()
    return path


def clips(folder: Path, count: int = 10, seconds: float = 5.0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [clip(folder / f"clip-{n:02d}.wav", SENTENCES[n % len(SENTENCES)], seconds) for n in range(count)]


def recording(path: Path, minutes: float) -> Path:
    """A long call: the sentences over and over, with pauses, ``minutes`` long."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    piece = clip(path.with_name("piece.wav"), " ".join(SENTENCES))
    seconds_per_piece = float(subprocess.run(["soxi", "-D", str(piece)], capture_output=True, text=True,
                                             check=True).stdout)
    repeats = max(int(minutes * 60 / (seconds_per_piece + 1.0)) + 1, 1)
    padded = path.with_name("piece-padded.wav")
    subprocess.run(["sox", "-V1", str(piece), str(padded), "pad", "0", "1.0"], check=True)
    subprocess.run(["sox", "-V1", *([str(padded)] * repeats), str(path), "trim", "0", str(minutes * 60)],
                   check=True)
    piece.unlink()
    padded.unlink()
    return path


def seconds_of(path: Path) -> float:
    return float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)
