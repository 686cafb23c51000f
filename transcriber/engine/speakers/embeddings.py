"""Speaker embeddings of short windows of speech (CAM++, engine/speakers/campplus.py).

The speech is what the recognition's voice-activity detector heard
(``speech``), cut between sentences (a speaker change is nearly always one),
or, without it, where the words are: each segment's words, split where they
pause for ``JOIN_GAP``.  Each such region is covered by windows
of ``WINDOW`` seconds every ``STEP`` (one window of its own length when it is
shorter, widened to ``MIN_WINDOW``).  Windows rarely cross a segment's edge, and
segments end at sentences, so a window rarely hears two people.  Each window
becomes an 80-bin Kaldi fbank, mean-normalised over time, and a 192-value
embedding, L2-normalised (3D-Speaker's own recipe for these weights).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from transcriber.engine.audio import SAMPLE_RATE, Decoder

WINDOW = 1.5  # seconds
STEP = 0.75
MIN_WINDOW = 0.4
JOIN_GAP = 0.5  # words closer than this are one stretch of speech
BATCH = 8  # windows embedded at once: 64 held +717 MB of activations for 1,600 windows, 8 holds +63 MB, as fast
PIECE = 600.0  # seconds of a long recording decoded at a time to embed its windows
OVERLAP = 2 * WINDOW  # more than a window: each lies whole in one piece
EMBEDDING_SIZE = 192
FBANK_BINS = 80


@dataclass(frozen=True)
class Window:
    start: float
    end: float
    region: int  # the stretch of speech it belongs to

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


def speech_regions(segments: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Stretches of speech: each segment's words, split at pauses of ``JOIN_GAP`` (its span without words)."""
    regions: list[tuple[float, float]] = []
    for segment in segments:
        words = [w for w in segment.get("words") or [] if w.get("end", 0) > w.get("start", 0)]
        if not words:
            if segment["end"] > segment["start"]:
                regions.append((float(segment["start"]), float(segment["end"])))
            continue
        start, end = words[0]["start"], words[0]["end"]
        for word in words[1:]:
            if word["start"] - end >= JOIN_GAP:
                regions.append((start, end))
                start = word["start"]
            end = max(end, word["end"])
        regions.append((start, end))
    return regions


def regions_of(speech: list[tuple[float, float]], segments: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """The detector's speech, cut in the middle of each pause between two segments (sentences) inside it."""
    cuts = sorted((a["end"] + b["start"]) / 2 for a, b in itertools.pairwise(segments)
                  if b["start"] >= a["end"])
    regions: list[tuple[float, float]] = []
    for start, end in speech:
        inside = [cut for cut in cuts if start < cut < end]
        edges = [start, *inside, end]
        regions += [(a, b) for a, b in itertools.pairwise(edges) if b - a > 0.05]
    return regions


def windows_of(regions: list[tuple[float, float]], duration: float) -> list[Window]:
    windows: list[Window] = []
    for index, (start, end) in enumerate(regions):
        if end - start <= WINDOW:
            pad = max(MIN_WINDOW - (end - start), 0.0) / 2
            windows.append(Window(max(start - pad, 0.0), min(end + pad, duration), index))
            continue
        count = int(np.ceil((end - start - WINDOW) / STEP)) + 1
        last = end - WINDOW
        windows += [Window(min(start + n * STEP, last), min(start + n * STEP, last) + WINDOW, index)
                    for n in range(count)]
    return windows


class Audio(Protocol):
    """The recording's samples, in pieces that overlap by at least ``OVERLAP`` seconds."""

    seconds: float

    def pieces(self) -> Iterator[tuple[int, np.ndarray, bool]]:
        """(its first sample, the samples, whether it is the last piece)."""
        ...


@dataclass(frozen=True)
class InMemory:
    """A recording decoded whole."""

    samples: np.ndarray

    @property
    def seconds(self) -> float:
        return self.samples.size / SAMPLE_RATE

    def pieces(self) -> Iterator[tuple[int, np.ndarray, bool]]:
        yield 0, self.samples, True


@dataclass(frozen=True)
class Decoded:
    """A long recording decoded again, ``PIECE`` seconds at a time: memory does not grow with its length."""

    path: Path
    seconds: float

    def pieces(self) -> Iterator[tuple[int, np.ndarray, bool]]:
        decoder = Decoder(self.path)
        try:
            size, overlap = round(PIECE * SAMPLE_RATE), round(OVERLAP * SAMPLE_RATE)
            piece = decoder.read(size)
            first = 0
            while True:
                if decoder.ended:
                    yield first, piece, True
                    return
                yield first, piece, False
                tail = piece[-overlap:]
                following = np.empty(size, np.float32)
                following[:tail.size] = tail
                filled = decoder.read_into(following, tail.size)
                first += piece.size - tail.size
                piece = following[:filled]
        finally:
            decoder.close()


class SpeakerEmbedder:
    """The CAM++ network with its weights, on a device; loaded once per worker."""

    def __init__(self, weights: Path, device: str) -> None:
        import torch

        from transcriber.engine.speakers.campplus import CAMPPlus

        self.device = device
        self.model = CAMPPlus(feat_dim=FBANK_BINS, embedding_size=EMBEDDING_SIZE)
        self.model.load_state_dict(torch.load(str(weights), map_location=device, weights_only=True))
        self.model.to(device).eval()

    def embed(self, audio: Audio, windows: list[Window],
              progress: Callable[[float], None] = lambda _: None) -> np.ndarray:
        """One L2-normalised embedding per window, in order (float32, ``len(windows)`` × 192)."""
        import torch
        import torchaudio.compliance.kaldi as kaldi

        result = np.zeros((len(windows), EMBEDDING_SIZE), np.float32)
        cuts = [(round(w.start * SAMPLE_RATE), round(w.end * SAMPLE_RATE)) for w in windows]
        pending = sorted(range(len(windows)), key=lambda i: cuts[i][0])
        done = 0
        with torch.inference_mode():
            for first, piece, final in audio.pieces():
                end = first + piece.size
                ready: dict[int, list[tuple[int, np.ndarray]]] = {}  # length -> (window, samples)
                while pending and (final or cuts[pending[0]][1] <= end):
                    index = pending.pop(0)
                    samples = piece[max(cuts[index][0] - first, 0):max(min(cuts[index][1], end) - first, 0)]
                    ready.setdefault(samples.size, []).append((index, samples))
                for length, chosen in sorted(ready.items()):
                    if length < 400:  # shorter than one fbank frame (25 ms): left at zero, assigned by its neighbours
                        done += len(chosen)
                        continue
                    for batch in range(0, len(chosen), BATCH):
                        part = chosen[batch:batch + BATCH]
                        features = torch.stack([self._fbank(kaldi, torch, samples) for _, samples in part])
                        embedded = self.model(features.to(self.device)).float().cpu().numpy()
                        norms = np.linalg.norm(embedded, axis=1, keepdims=True)
                        result[[index for index, _ in part]] = embedded / np.maximum(norms, 1e-8)
                        done += len(part)
                        progress(100.0 * done / len(windows))
        return result

    @staticmethod
    def _fbank(kaldi: Any, torch: Any, piece: np.ndarray) -> Any:
        wave = torch.from_numpy(np.ascontiguousarray(piece, dtype=np.float32)).unsqueeze(0)
        feature = kaldi.fbank(wave, num_mel_bins=FBANK_BINS, sample_frequency=SAMPLE_RATE, dither=0.0)
        return feature - feature.mean(dim=0, keepdim=True)
