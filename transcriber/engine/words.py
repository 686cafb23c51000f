"""Word timing without another model: Whisper's own cross-attention.

WhisperX's batched pipeline returns one segment per VAD chunk, without words;
its word timing needs a wav2vec2 model per language from a hub.  The
recognition model already knows where each token was heard: CTranslate2's
``align`` runs the decoder once over the tokens it produced and reads the
alignment heads' attention (what faster-whisper's ``word_timestamps`` does).
``WordTimer`` hooks it into one ``transcribe`` call of the pipeline: the
chunks' lengths as they are prepared, the encoder's output as it is computed,
and after each batch the words of each chunk.  The text is not touched, so
recognition is the same with and without words (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import logging
import math
import re
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

log = logging.getLogger("Engine")

HOP_SAMPLES = 160  # samples per mel frame at 16 kHz
CHUNK_FRAMES = 3000  # a 30-second chunk
PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END = re.compile(r"[.!?。！？…]['\"”)\]]*$")
METHOD = "cross_attention"
UNSPACED_LANGUAGES = frozenset({"zh", "yue", "ja", "th", "lo", "my", "bo", "km"})  # words written together


class WordTimer:
    """Times the words of every chunk one ``pipeline.transcribe`` call recognises."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.model = pipeline.model  # whisperx's WhisperModel: a faster-whisper WhisperModel
        self.lengths: deque[int] = deque()  # samples of each chunk, in the order they were prepared
        self.encoded: Any = None  # the encoder's output of the batch being generated
        self.words: list[list[dict[str, Any]]] = []  # per chunk, times from the chunk's start

    @contextmanager
    def installed(self) -> Iterator[WordTimer]:
        hooks = ((self.pipeline, "preprocess"), (self.model, "encode"), (self.model, "generate_segment_batched"))
        saved = {(id(owner), name): vars(owner).get(name) for owner, name in hooks}  # instance wrappers (asr.py)
        preprocess, encode, generate = self.pipeline.preprocess, self.model.encode, self.model.generate_segment_batched

        def preprocess_and_count(audio: dict[str, Any]) -> Any:
            self.lengths.append(int(audio["inputs"].shape[0]))
            return preprocess(audio)

        def encode_and_keep(features: np.ndarray) -> Any:
            self.encoded = encode(features)
            return self.encoded

        def generate_and_time(features: Any, tokenizer: Any, options: Any, encoder_output: Any = None) -> Any:
            output = generate(features, tokenizer, options)
            lengths = [self.lengths.popleft() for _ in range(len(output["text"]))]
            self.words.extend(self._time(tokenizer, output["text"], lengths))
            self.encoded = None
            return output

        self.pipeline.preprocess, self.model.encode = preprocess_and_count, encode_and_keep
        self.model.generate_segment_batched = generate_and_time
        try:
            yield self
        finally:
            for owner, name in hooks:
                before = saved[(id(owner), name)]
                if before is None:
                    delattr(owner, name)  # the class's own method again
                else:
                    setattr(owner, name, before)

    def _time(self, tokenizer: Any, texts: list[str], lengths: list[int]) -> list[list[dict[str, Any]]]:
        from faster_whisper.transcribe import merge_punctuations

        tokens = [[token for token in tokenizer.encode(text) if token < tokenizer.eot] for text in texts]
        frames = [min(max(math.ceil(length / HOP_SAMPLES), 1), CHUNK_FRAMES) for length in lengths]
        timed: list[list[dict[str, Any]]] = []
        for index, alignment in enumerate(self._align(tokenizer, tokens, frames)):
            merge_punctuations(alignment, PREPEND_PUNCTUATION, APPEND_PUNCTUATION)
            seconds = lengths[index] / (HOP_SAMPLES * 100)
            timed.append([
                {"word": word["word"].strip(), "start": min(float(word["start"]), seconds),
                 "end": min(float(word["end"]), seconds), "probability": float(word["probability"])}
                for word in alignment if word["word"].strip()
            ])
        return timed

    def _align(self, tokenizer: Any, tokens: list[list[int]], frames: list[int]) -> list[list[dict[str, Any]]]:
        aligned: list[list[dict[str, Any]]] = [[] for _ in tokens]
        wanted = [index for index, chunk in enumerate(tokens) if chunk]
        if not wanted or self.encoded is None:
            return aligned
        encoded = self.encoded
        if len(wanted) < len(tokens):  # silent chunks: align only those with words
            import ctranslate2

            on_cpu = encoded.to_device(ctranslate2.Device.cpu) if encoded.device != "cpu" else encoded
            encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(on_cpu)[wanted]))
        results = self.model.model.align(encoded, tokenizer.sot_sequence, [tokens[i] for i in wanted],
                                         [frames[i] for i in wanted])
        for index, result in zip(wanted, results, strict=True):
            aligned[index] = _words(tokenizer, tokens[index], result, self.model.tokens_per_second)
        return aligned

    def attach(self, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``segments`` (one per chunk, from the same call) with their words, in the file's seconds."""
        if len(self.words) != len(segments):
            log.warning("Word timing lost track of WhisperX's chunks (%d timed, %d segments); no words",
                        len(self.words), len(segments))
            return segments
        for segment, words in zip(segments, self.words, strict=True):
            offset = float(segment["start"])
            segment["words"] = [{**word, "start": word["start"] + offset, "end": word["end"] + offset}
                                for word in words]
        return segments


def _words(tokenizer: Any, tokens: list[int], result: Any, tokens_per_second: float) -> list[dict[str, Any]]:
    """faster-whisper's ``find_alignment`` for one chunk: words, their start, end and mean token probability."""
    words, word_tokens = tokenizer.split_to_word_tokens([*tokens, tokenizer.eot])
    if len(word_tokens) <= 1:
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    text_indices = np.array([pair[0] for pair in result.alignments])
    time_indices = np.array([pair[1] for pair in result.alignments])
    if text_indices.size == 0:
        return []
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / tokens_per_second
    if jump_times.size < boundaries[-1] + 1:
        return []
    probabilities = result.text_token_probs
    return [
        {"word": word, "tokens": chunk, "start": float(jump_times[start]), "end": float(jump_times[end]),
         "probability": float(np.mean(probabilities[start:end])) if end > start else 0.0}
        for word, chunk, start, end in zip(words, word_tokens, boundaries[:-1], boundaries[1:], strict=False)
    ]


def split_at_sentences(segments: list[dict[str, Any]], language: str | None,
                       max_seconds: float = 15.0) -> list[dict[str, Any]]:
    """Segments of whole sentences (or at most ``max_seconds``), cut between words.

    A 30-second chunk reads badly as one subtitle; with words, a segment ends
    after a word that ends a sentence, or before one that would take it past
    ``max_seconds``.  Segments without words are kept as they are.
    """
    cut: list[dict[str, Any]] = []
    for segment in segments:
        words = segment.get("words")
        if not words:
            cut.append(segment)
            continue
        current: list[dict[str, Any]] = []
        for index, word in enumerate(words):
            if current and word["end"] - current[0]["start"] > max_seconds:
                cut.append(segment_of(current, language))
                current = []
            current.append(word)
            if SENTENCE_END.search(word["word"]) and index + 1 < len(words):
                cut.append(segment_of(current, language))
                current = []
        if current:
            cut.append(segment_of(current, language))
    return cut


def segment_of(words: list[dict[str, Any]], language: str | None) -> dict[str, Any]:
    """A segment made of ``words``: their span, and their text joined as the language writes it."""
    joiner = "" if language in UNSPACED_LANGUAGES else " "
    return {"start": words[0]["start"], "end": max(word["end"] for word in words),
            "text": joiner.join(word["word"] for word in words), "words": words}
