"""The engine boundary: the only module that imports WhisperX.

WhisperX (and torch with it) is imported lazily, inside the worker process,
so the daemon and its API stay light.  Loaded pipelines are kept warm keyed
by (model, device, compute type); language and temperature are per call.
Exceptions from WhisperX are classified here into the job error hierarchy.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import math
import os
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, cast

import numpy as np

from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.domain.transcript import Transcript
from transcriber.engine.audio import SAMPLE_RATE, Clip, load, probe_seconds
from transcriber.engine.base import EngineOptions, ProgressReporter
from transcriber.engine.model_files import SPEAKER_WEIGHTS, resolve_model, speaker_weights
from transcriber.engine.speakers.assign import speaker_id, split_at_speakers
from transcriber.engine.speakers.diarizer import BACKEND as CAMPPLUS
from transcriber.engine.speakers.diarizer import Diarized, Hints, SpeakerDiarizer
from transcriber.engine.speakers.embeddings import Audio, Decoded, InMemory
from transcriber.engine.stages import PostStage, Segments
from transcriber.engine.words import METHOD as CROSS_ATTENTION
from transcriber.engine.words import WordTimer, split_at_sentences
from transcriber.errors import EngineError, JobError, ModelError, ModelUnavailableError, OutOfMemoryError
from transcriber.logs import quiet_libraries

log = logging.getLogger("Engine")

VAD_BATCH_SIZE = 8
WINDOW_SECONDS = 600.0  # longer files are decoded and transcribed this much at a time (_Windows)
CHUNK_SECONDS = 30  # WhisperX's chunk_size: the VAD's speech is merged into chunks this long at most
ALIGNMENT_DIR = "alignment"  # models.dir/alignment/<language>: a wav2vec2 model times words instead


class WhisperXEngine:
    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self._pipelines: dict[tuple[str, str, str], Any] = {}
        # The stages after recognition; each keeps its models warm until ``unload``.
        self._aligner = PostStage("alignment", Stage.ALIGNING, self._load_aligner, _align)
        self._diarizer = PostStage("diarization", Stage.DIARIZING, self._load_diarizer, _diarize)
        if not options.allow_download:
            # Fail fast instead of waiting on network timeouts in a sealed network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    @staticmethod
    def verify(settings: TranscriptionSettings, options: EngineOptions) -> None:
        resolve_model(settings.model_size, Path(options.models_dir), options.allow_download)

    def window_for(self, settings: TranscriptionSettings) -> float | None:
        """How much of a long file to decode at a time (``audio.load``); None: whole files.

        Word timing from the cross-attention is done chunk by chunk, and
        diarization decodes the file again, a piece at a time, so both keep
        windows; a wav2vec2 aligner works on the whole recording, so with one
        installed, files are decoded whole, and memory grows with their length again.
        """
        whole = settings.word_timestamps and self._aligner_folders()
        return None if whole else WINDOW_SECONDS

    def _aligner_folders(self) -> bool:
        try:
            return any(path.is_dir() for path in (Path(self.options.models_dir) / ALIGNMENT_DIR).iterdir())
        except OSError:
            return False

    def _aligner_folder(self, language: str) -> Path | None:
        folder = Path(self.options.models_dir) / ALIGNMENT_DIR / language
        return folder if folder.is_dir() else None

    def is_loaded(self, settings: TranscriptionSettings) -> bool:
        return settings.engine_key() in self._pipelines

    def load(self, settings: TranscriptionSettings) -> float:
        key = settings.engine_key()
        if key in self._pipelines:
            return 0.0
        started = time.monotonic()
        self._pipelines[key] = self._load_pipeline(settings)
        seconds = time.monotonic() - started
        log.info("Loaded model %s on %s (%s) in %.1f s", *key, seconds)
        return seconds

    def loaded_models(self) -> list[str]:
        return [f"{model}/{device}/{compute}" for model, device, compute in self._pipelines]

    def unload(self) -> None:
        stages = (self._aligner, self._diarizer)
        if not self._pipelines and not any(stage.loaded() for stage in stages):
            return
        log.info("Unloading idle models: %s", ", ".join(self.loaded_models()))
        self._pipelines.clear()
        for stage in stages:
            stage.unload()
        gc.collect()

    def transcribe(self, clip: Clip, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript:
        try:
            return self._transcribe(clip, settings, report)
        except JobError:
            raise
        except Exception as exc:  # the engine boundary: classify whatever WhisperX raised
            raise classify_engine_exception(exc) from exc

    def _transcribe(self, clip: Clip, settings: TranscriptionSettings, report: ProgressReporter) -> Transcript:
        if settings.engine_key() not in self._pipelines:
            report(Stage.LOADING_MODEL, 0.0)
            self.load(settings)
        pipeline = self._pipelines[settings.engine_key()]
        pipeline.options = dataclasses.replace(pipeline.options, temperatures=[settings.temperature])
        samples = clip.samples
        language, probability = self._language(pipeline, samples, settings)
        report(Stage.TRANSCRIBING, 0.0)
        windows = _Windows.of(pipeline) if clip.rest is not None else None
        if clip.rest is not None and windows is None:
            samples = np.concatenate([samples, clip.rest.read_all()])  # whole after all
        warnings: list[str] = []
        aligner = self._aligner_folder(language) if settings.word_timestamps and language else None
        if aligner is not None:  # loaded before recognition: if it cannot be, the cross-attention times the words
            report(Stage.ALIGNING, 0.0)
            aligner = aligner if self._aligner.ready((str(aligner), settings.device), warnings) else None
        timed = settings.word_timestamps and aligner is None  # words from the cross-attention
        speech = _Speech(pipeline)  # for the analysis, and for diarization
        turns: list[dict[str, Any]] = []
        # the VAD's reports keep the progress so far (0 % before the recognition of a whole file begins)
        with _reporting_vad_batches(pipeline, lambda stage, _: report(stage, windows.percent if windows else 0.0)):
            if windows is not None:
                output = windows.transcribe(clip, language, self.options.batch_size, report, timed)
            else:
                with timing(pipeline, timed) as timer, speech.heard():  # windows keep the VAD's scores themselves
                    output = pipeline.transcribe(
                        samples, batch_size=self.options.batch_size, language=language,
                        progress_callback=lambda percent: report(Stage.TRANSCRIBING, percent),
                    )
                if timer is not None:
                    output["segments"] = timer.attach(output["segments"])
        segments = [_clean_segment(s) for s in output["segments"]]
        stages: dict[str, Any] = {}
        language = language or output["language"]
        if settings.word_timestamps and segments:
            method = CROSS_ATTENTION
            if aligner is not None:
                report(Stage.ALIGNING, 0.0)
                aligned = self._aligner.apply((str(aligner), settings.device), segments, samples, language, warnings)
                method, segments = ("wav2vec2", aligned) if aligned is not None else (method, segments)
            stages["word_timing"] = {"method": method}
            segments = split_at_sentences(segments, language)
        if windows is not None:  # binarised once, at the end: 0.3 s for an hour
            speech.regions = speech.binarised(windows.speech())
        if settings.diarize and segments:
            report(Stage.DIARIZING, 0.0)
            started, key = time.monotonic(), (self._diarization_backend(), settings.device)
            audio = InMemory(samples) if windows is None else Decoded(clip.path, clip.seconds)
            diarized = self._diarizer.apply(
                key, segments, audio, language, warnings,
                hints=Hints(settings.min_speakers, settings.max_speakers),
                progress=lambda percent: report(Stage.DIARIZING, round(percent, 1)), speech=speech.regions,
            )
            if diarized is not None:  # (speakers on the segments, the turns)
                segments, turns = diarized.segments, diarized.turns
                stages["diarization"] = {
                    "backend": key[0], "speakers_found": len({s["speaker"] for s in segments if "speaker" in s}),
                    "seconds": round(time.monotonic() - started, 3),
                }
        return Transcript(
            text=" ".join(s["text"] for s in segments if s["text"]).strip(),
            language=output["language"], segments=segments, model=settings.model_size,
            language_probability=probability, confidence=_confidence(output["segments"]),
            warnings=tuple(warnings), stages=stages, turns=turns,
            speech=[(round(start, 3), round(end, 3)) for start, end in speech.regions or []],
        )

    def _load_pipeline(self, settings: TranscriptionSettings) -> Any:
        import whisperx  # heavy: torch, transformers, pyannote — worker process only
        import whisperx.asr

        whisperx.setup_logging(level="warning")  # its own handler and format otherwise
        quiet_libraries()

        try:
            model = resolve_model(settings.model_size, Path(self.options.models_dir), self.options.allow_download)
        except ModelError as exc:
            raise ModelUnavailableError(exc.message) from exc
        threads = self.options.cpu_threads or os.cpu_count() or 1
        try:
            import torch

            torch.set_num_threads(threads)
            pipeline = whisperx.load_model(
                model, settings.device, compute_type=settings.compute_type, language=None,
                asr_options={"beam_size": self.options.beam_size, "temperatures": [settings.temperature]},
                vad_method="pyannote", download_root=self.options.cache_dir,
                local_files_only=not self.options.allow_download, threads=threads,
            )
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"model {settings.model_size!r} could not be loaded: {exc}") from exc
        _limit_vad_batch(pipeline)
        if settings.device == "cpu":
            _encode_one_at_a_time(pipeline)
        return pipeline

    def _language(
        self, pipeline: Any, samples: np.ndarray, settings: TranscriptionSettings,
    ) -> tuple[str, float | None]:
        if not pipeline.model.model.is_multilingual:
            return "en", None
        if settings.language:
            return settings.language, None
        language, probability, _ = pipeline.model.detect_language(audio=samples)
        return language, round(float(probability), 4)

    def _load_aligner(self, key: Hashable) -> Any:
        """A wav2vec2 model for the language from ``models.dir/alignment/<language>``."""
        import whisperx

        folder, device = cast(tuple[str, str], key)
        model, metadata = whisperx.load_align_model(language_code=Path(folder).name, device=device,
                                                    model_name=folder, model_cache_only=True)
        return model, metadata, device

    def _diarization_backend(self) -> str:
        """``diarization.backend``; ``auto``: the packaged CAM++ pipeline when installed, else a
        configured pyannote pipeline, else CAM++ (whose warning then says how to install it)."""
        chosen = self.options.diarization_backend
        if chosen != "auto":
            return chosen
        installed = (Path(self.options.models_dir) / SPEAKER_WEIGHTS.name / SPEAKER_WEIGHTS.file).is_file()
        return CAMPPLUS if installed or not self._pyannote_configured() else "pyannote"

    def _pyannote_configured(self) -> bool:
        return bool(self.options.pyannote_pipeline) or (self.options.allow_download and bool(self.options.hf_token))

    def _load_diarizer(self, key: Hashable) -> Any:
        backend, device = cast(tuple[str, str], key)
        if backend == CAMPPLUS:
            return SpeakerDiarizer(speaker_weights(Path(self.options.models_dir)), device)
        if not self._pyannote_configured():
            raise ModelError("no pyannote pipeline: set diarization.pyannote_pipeline to a local pipeline "
                             "folder, or allow downloads with a hub token")
        from whisperx.diarize import DiarizationPipeline

        # WhisperX's default is an online model; pyannote 4 also fetches a PLDA from the hub
        # unless the local pipeline folder has it (docs/CONFIGURATION.md, diarization).
        return DiarizationPipeline(model_name=self.options.pyannote_pipeline or None,
                                   token=self.options.hf_token or None, device=device)


class _Speech:
    """The speech WhisperX's voice-activity detector hears in one ``transcribe`` call, kept for
    diarization (engine/speakers/) and the result's analysis (``Transcript.speech``): its frame
    scores, binarised with WhisperX's onset and offset (``regions``, seconds), but not cut at its
    30 s chunks, and with blips and gaps under 0.1 s dropped."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline  # None: nothing to hear
        self.regions: list[tuple[float, float]] | None = None  # None: not heard (diarization uses the words)

    @contextmanager
    def heard(self) -> Iterator[None]:
        vad: Any = getattr(self.pipeline, "vad_model", None)
        detect = getattr(vad, "vad_pipeline", None)
        if detect is None:
            yield
            return

        def detect_and_keep(audio: Any) -> Any:
            scores = detect(audio)
            self.regions = self.binarised(scores)
            return scores

        vad.vad_pipeline = detect_and_keep
        try:
            yield
        finally:
            vad.vad_pipeline = detect

    def binarised(self, scores: Any) -> list[tuple[float, float]] | None:
        """Speech regions (seconds) of the VAD's frame scores (a ``SlidingWindowFeature``)."""
        try:
            from whisperx.vads.pyannote import Binarize

            params = self.pipeline._vad_params
            active = Binarize(onset=params["vad_onset"], offset=params["vad_offset"],
                              min_duration_on=0.1, min_duration_off=0.1)(scores)
            return [(float(segment.start), float(segment.end)) for segment in active.itersegments()]
        except (AttributeError, ImportError, KeyError, TypeError) as exc:
            log.warning("WhisperX's VAD has changed shape (%s); speech and speakers are found in the words", exc)
            return None


def _vad_inference(pipeline: Any) -> Any | None:
    """pyannote's sliding-window inference inside WhisperX's VAD, if it still has that shape."""
    inference = getattr(getattr(pipeline.vad_model, "vad_pipeline", None), "_segmentation", None)
    return inference if inference is not None and hasattr(inference, "batch_size") else None


def _limit_vad_batch(pipeline: Any) -> None:
    """Run pyannote's VAD over VAD_BATCH_SIZE windows at a time instead of its 32.

    Each 10-second window fans out to 80 SincNet channels; 32 at once held
    ~280 MB more at the peak of every file longer than half a minute
    (docs/PERFORMANCE.md, memory), for no measurable speed on a CPU.
    """
    inference = _vad_inference(pipeline)
    if inference is not None:
        inference.batch_size = VAD_BATCH_SIZE
    else:
        log.warning("WhisperX's VAD has changed shape; its batch size stays at the default")


class _Windows:
    """A long file transcribed a window (``WINDOW_SECONDS``) at a time, with the
    very segments WhisperX finds in the whole file.

    Decoded whole, an hour held 220 MB of samples through the VAD and the
    recognition, and the decoder twice that for a moment (docs/PERFORMANCE.md,
    memory); a window at a time, memory does not grow with the length.  Cut
    anywhere, windows would change what is recognised: the VAD sees less
    context at a cut, and WhisperX merges speech into 30-second chunks from
    the start of whatever it is given.  So:

    - the VAD's scores are kept for the whole file (a frame every 17 ms: an
      hour is 0.8 MB).  It slides a model over windows ``step`` apart and
      scores frames ``frame`` apart: run on a window that starts at a
      multiple of both (``grid``, 13.5 s), it scores every frame bit for bit
      as over the whole file, except within ``context`` of the window's ends;
      each window is scored from ``2 * context`` before the previous one's end,
      and its scores replace those that were not exact yet;
    - WhisperX's chunks are merged from those scores, from the file's start,
      each window; the chunks already decided (``_final``) and not yet
      recognised are recognised, from the window's samples addressed by the
      file's sample numbers (``_FileSamples``), so their times are the file's;
    - a window keeps the samples from the first chunk still undecided (at
      most a minute) and is filled up with the next ones.
    """

    def __init__(self, pipeline: Any, step: int, frame: int, context: int) -> None:
        self.pipeline = pipeline
        self.vad = pipeline.vad_model
        self.frame = frame  # samples
        self.grid = math.lcm(step, frame)  # samples
        self.context = context  # samples of audio the VAD needs on each side of a frame
        self.context_frames = math.ceil(context / frame) + 1
        # How long before a window's end its chunks are decided: the context, the
        # look-ahead of a split of long speech (half a chunk), and a second more.
        self.settled = context / SAMPLE_RATE + CHUNK_SECONDS / 2 + 1.0
        # A window keeps at most ``settled`` + a chunk + the grid of the previous one
        # (~66 s): twice that at least, so that each brings as much new audio.
        self.window = max(round(WINDOW_SECONDS * SAMPLE_RATE),
                          2 * (round((self.settled + CHUNK_SECONDS) * SAMPLE_RATE) + self.grid))
        self.percent = 0.0  # of the file recognised, as far as its length is known
        self._scores: tuple[np.ndarray, Any] = (np.empty((0, 1), np.float32), None)  # the file's, once transcribed

    @classmethod
    def of(cls, pipeline: Any) -> _Windows | None:
        """None when WhisperX's VAD no longer has the shape this relies on (whole files then)."""
        inference = _vad_inference(pipeline)
        try:
            from whisperx.vads import Pyannote

            assert inference is not None
            step = round(inference.step * SAMPLE_RATE)
            frame = round(inference.model.receptive_field.step * SAMPLE_RATE)
            context = round((inference.duration + 2 * inference.step) * SAMPLE_RATE)
            assert isinstance(pipeline.vad_model, Pyannote) and step > 0 and frame > 0
            assert {"vad_onset", "vad_offset"} <= set(pipeline._vad_params)
        except (AttributeError, AssertionError, ImportError, TypeError):
            log.warning("WhisperX's VAD has changed shape; long files are decoded whole")
            return None
        return cls(pipeline, step, frame, context)

    def transcribe(self, clip: Clip, language: str, batch_size: int, report: ProgressReporter,
                   timed: bool = False) -> dict[str, Any]:
        rest = clip.rest
        assert rest is not None
        total = probe_seconds(clip.path)
        buffer = clip.samples  # its array holds every window
        if buffer.size < self.window:
            buffer = np.concatenate([buffer, np.empty(self.window - buffer.size, np.float32)])
        filled = rest.read_into(buffer, clip.samples.size)
        start = 0  # the file's sample at buffer[0]
        scored = 0  # the next pass of the VAD starts at this sample of the file
        scores, frames = np.empty((0, 1), np.float32), None
        done = 0  # chunks recognised
        segments: list[dict[str, Any]] = []
        while True:
            last, end = rest.ended, start + filled
            scores, frames = self._score(buffer[scored - start:filled], scored, scores, frames)
            chunks = self._merge(scores, frames)
            final = len(chunks) if last else self._final(chunks, end / SAMPLE_RATE)
            if final > done:
                segments += self._recognise(_FileSamples(buffer[:filled], start), chunks[done:final], language,
                                            batch_size, total, report, timed)
                done = final
            if last:
                self._scores = (scores, frames)
                return {"segments": segments, "language": language}
            scored = self._on_grid(end - 2 * self.context)
            keep = self._on_grid(min(round(self._pending(chunks, done, end / SAMPLE_RATE) * SAMPLE_RATE), scored))
            buffer[:end - keep] = buffer[keep - start:filled]
            filled = rest.read_into(buffer, end - keep)
            start = keep

    def speech(self) -> Any:
        """The whole file's VAD scores, after ``transcribe`` (a ``SlidingWindowFeature``)."""
        from pyannote.core import SlidingWindowFeature

        return SlidingWindowFeature(*self._scores)

    def _on_grid(self, sample: int) -> int:
        return max(sample // self.grid * self.grid, 0)

    def _score(
        self, samples: np.ndarray, at: int, scores: np.ndarray, frames: Any,
    ) -> tuple[np.ndarray, Any]:
        """The file's VAD scores, with those of ``samples`` (from the file's sample ``at``, on the grid)."""
        piece = self.vad({"waveform": self.vad.preprocess_audio(samples), "sample_rate": SAMPLE_RATE})
        if at == 0:
            return piece.data, piece.sliding_window
        first = at // self.frame + self.context_frames  # the file's frame where the exact new scores begin
        return np.concatenate([scores[:first], piece.data[self.context_frames:]]), frames

    def _merge(self, scores: np.ndarray, frames: Any) -> list[dict[str, Any]]:
        """WhisperX's chunks, from the file's start (times in the file's seconds)."""
        from pyannote.core import SlidingWindowFeature

        params = self.pipeline._vad_params
        if not np.any(scores > params["vad_onset"]):
            return []  # merge_chunks would warn of "no active speech"
        return self.vad.merge_chunks(SlidingWindowFeature(scores, frames), CHUNK_SECONDS,
                                     onset=params["vad_onset"], offset=params["vad_offset"])

    def _final(self, chunks: list[dict[str, Any]], seconds: float) -> int:
        """How many of ``chunks`` (merged from audio up to ``seconds``) the whole file has too.

        A chunk is decided once the speech after it is (WhisperX closed it
        because that speech would make it longer than ``CHUNK_SECONDS``), or
        once no speech after the settled part could join it.
        """
        settled = seconds - self.settled
        count = 0
        for index, chunk in enumerate(chunks):
            following = chunks[index + 1]["segments"][0] if index + 1 < len(chunks) else None
            if not ((following is not None and following[1] <= settled)
                    or (chunk["end"] <= settled and settled - chunk["start"] >= CHUNK_SECONDS)):
                break
            count += 1
        return count

    def _pending(self, chunks: list[dict[str, Any]], done: int, seconds: float) -> float:
        """Where the first chunk not recognised yet starts, or can start at the earliest (seconds)."""
        settled = seconds - self.settled
        if done < len(chunks) and chunks[done]["start"] <= settled:
            return float(chunks[done]["start"])
        return settled

    def _recognise(
        self, samples: _FileSamples, chunks: list[dict[str, Any]], language: str, batch_size: int,
        total: float | None, report: ProgressReporter, timed: bool,
    ) -> list[dict[str, Any]]:
        def progress(percent: float) -> None:
            done = chunks[min(max(round(percent * len(chunks) / 100) - 1, 0), len(chunks) - 1)]["end"]
            self.percent = round(min(100.0 * done / total, 99.9), 1) if total else 0.0
            report(Stage.TRANSCRIBING, self.percent)

        self.pipeline.vad_model = _planned_vad()(chunks)
        try:
            with timing(self.pipeline, timed) as timer:
                output = self.pipeline.transcribe(samples, batch_size=batch_size, language=language,
                                                  progress_callback=progress)
        finally:
            self.pipeline.vad_model = self.vad
        return timer.attach(output["segments"]) if timer is not None else output["segments"]


class _FileSamples:
    """A window's samples, sliced by the file's sample numbers: WhisperX cuts each chunk
    out of the audio it is given (``audio[f1:f2]``), computed from the file's times."""

    def __init__(self, samples: np.ndarray, start: int) -> None:
        self.samples = samples
        self.start = start

    def __getitem__(self, index: slice) -> np.ndarray:
        assert index.start >= self.start and index.step is None, (index, self.start)
        return self.samples[index.start - self.start:index.stop - self.start]


@functools.cache
def _planned_vad() -> type:
    """A WhisperX VAD that hands ``transcribe`` the chunks ``_Windows`` chose (built
    here: WhisperX is imported in the worker only)."""
    from whisperx.vads import Vad

    class Planned(Vad):
        def __init__(self, chunks: list[dict[str, Any]]) -> None:
            super().__init__(0.5)
            self.chunks = chunks

        @staticmethod
        def preprocess_audio(audio: np.ndarray) -> None:
            return None

        def __call__(self, _: Any) -> list[dict[str, Any]]:
            return self.chunks

        def merge_chunks(self, chunks: list[dict[str, Any]], *_: Any, **__: Any) -> list[dict[str, Any]]:
            return chunks

    return Planned


def _encode_one_at_a_time(pipeline: Any) -> None:
    """Run Whisper's encoder on one 30-second chunk at a time, the decoder still
    on the whole batch (``whisperx.batch_size`` chunks).

    On a CPU, CTranslate2's encoder holds the attention of every chunk of the
    batch at once: +390 MB at the peak for a batch of 4, +140 MB one at a time,
    and no slower (4.0 s against 4.5 s for four chunks).  Each chunk is encoded
    by itself in a batch too (int8 matrix products, row by row), so the output
    is the same bit for bit, and so are the transcripts (docs/PERFORMANCE.md,
    memory).
    """
    model: Any = getattr(pipeline, "model", None)
    encode = getattr(model, "encode", None)
    if encode is None or not hasattr(model, "generate_segment_batched"):
        log.warning("WhisperX's model has changed shape; it encodes whole batches at once")
        return
    import ctranslate2

    def encode_each(features: np.ndarray) -> Any:
        if features.ndim < 3 or features.shape[0] == 1:
            return encode(features)
        encoded = np.concatenate([np.asarray(encode(features[n:n + 1])) for n in range(features.shape[0])])
        return ctranslate2.StorageView.from_array(encoded)  # keeps ``encoded`` alive while it is used

    model.encode = encode_each


@contextmanager
def _reporting_vad_batches(pipeline: Any, report: ProgressReporter) -> Iterator[None]:
    """Report (transcribing, 0 %) after each VAD batch.

    The VAD runs for a minute on an hour of audio before the first
    recognition progress; these reports keep the job visibly alive, and
    give the worker the moments it trims its heap in (heap.py: the VAD's
    freed buffers held 1.4 GB on an hour otherwise).
    """
    inference = _vad_inference(pipeline)
    if inference is None:
        yield
        return
    infer = inference.infer

    def infer_and_report(chunks: Any) -> Any:
        outputs = infer(chunks)
        report(Stage.TRANSCRIBING, 0.0)
        return outputs

    inference.infer = infer_and_report
    try:
        yield
    finally:
        del inference.infer  # the class's own method again


def timing(pipeline: Any, wanted: bool) -> AbstractContextManager[WordTimer | None]:
    """Words timed through one ``transcribe`` call of ``pipeline`` when ``wanted`` (engine/words.py)."""
    return WordTimer(pipeline).installed() if wanted else nullcontext()


def classify_engine_exception(exc: BaseException) -> JobError:
    """Map what WhisperX / torch / CTranslate2 raised to a stable error code."""
    text = str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return OutOfMemoryError(f"ran out of memory: {text[:300]}")
    return EngineError(f"{type(exc).__name__}: {text[:500]}")


def _align(aligner: Any, segments: Segments, samples: np.ndarray, _language: str) -> Segments:
    import whisperx

    model, metadata, device = aligner
    aligned = whisperx.align(segments, model, metadata, samples, device)
    return [_clean_segment(s) for s in aligned["segments"]]


def _diarize(diarizer: Any, segments: Segments, audio: Audio, language: str, hints: Hints,
             progress: Callable[[float], None], speech: list[tuple[float, float]] | None) -> Diarized:
    if isinstance(diarizer, SpeakerDiarizer):
        return diarizer(audio, segments, language, hints, progress, speech)
    import whisperx

    samples = audio.samples if isinstance(audio, InMemory) else load(cast(Decoded, audio).path).samples  # whole
    found = diarizer(samples, min_speakers=hints.min_speakers, max_speakers=hints.max_speakers)
    order: dict[str, str] = {}  # pyannote's labels renamed in order of first appearance, as CAM++'s are
    for label in found.sort_values("start")["speaker"]:
        order.setdefault(label, speaker_id(len(order)))
    found = found.assign(speaker=found["speaker"].map(order))
    assigned = whisperx.assign_word_speakers(found, {"segments": segments})
    turns = [{"start": round(float(row.start), 3), "end": round(float(row.end), 3), "speaker": row.speaker}
             for row in found.sort_values("start").itertuples()]
    return Diarized(split_at_speakers([_clean_segment(s) for s in assigned["segments"]], language), turns)


def _clean_segment(segment: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {
        "start": round(float(segment["start"]), 3),
        "end": round(float(segment["end"]), 3),
        "text": str(segment["text"]).strip(),
    }
    if "speaker" in segment:
        cleaned["speaker"] = segment["speaker"]
    if "words" in segment:
        cleaned["words"] = [_clean_word(w) for w in segment["words"]]
    return cleaned


def _clean_word(word: dict[str, Any]) -> dict[str, Any]:
    return {key: (round(float(value), 3) if isinstance(value, float) else value) for key, value in word.items()
            if not (isinstance(value, float) and math.isnan(value))}


def _confidence(segments: list[dict[str, Any]]) -> float | None:
    """Duration-weighted mean token probability, from the segments' avg_logprob."""
    weighted = [
        (math.exp(s["avg_logprob"]), max(s["end"] - s["start"], 0.01))
        for s in segments if s.get("avg_logprob") is not None
    ]
    if not weighted:
        return None
    total = sum(weight for _, weight in weighted)
    return round(sum(p * w for p, w in weighted) / total, 4)
