"""Speaker diarization offline, on the real models and a real two-speaker dialogue (engine/speakers/)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bench.dialogues import Dialogue, two_speaker
from bench.speakers_score import score
from tests.e2e.conftest import Speech, synthesise
from tests.helpers import REPO
from transcriber.domain.job import Stage
from transcriber.domain.settings import TranscriptionSettings
from transcriber.engine import asr as asr_module
from transcriber.engine.asr import WhisperXEngine
from transcriber.engine.audio import load as load_audio
from transcriber.engine.base import EngineOptions
from transcriber.engine.model_files import SPEAKER_WEIGHTS, speaker_weights
from transcriber.engine.speakers import embeddings

pytestmark = pytest.mark.e2e

DIARIZE = TranscriptionSettings("base", "en", 0.0, "int8", "cpu", diarize=True)


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory: pytest.TempPathFactory) -> Dialogue:
    return two_speaker(tmp_path_factory.mktemp("dialogue"))


def engine(tmp_path: Path, models: Path = REPO / "models") -> WhisperXEngine:
    return WhisperXEngine(EngineOptions(models_dir=str(models), cache_dir=str(tmp_path)))


def test_a_two_speaker_dialogue_gets_its_speaker_turns(tmp_path: Path, dialogue: Dialogue) -> None:
    progress: list[tuple[Stage, float]] = []
    transcript = engine(tmp_path).transcribe(load_audio(dialogue.path), DIARIZE,
                                             lambda stage, percent: progress.append((stage, percent)))
    figures = score(dialogue, transcript.segments, turns=transcript.turns)
    assert figures["speakers_found"] == 2 and figures["words_right"] >= 0.95, figures
    assert figures["der"] <= 0.10, figures
    assert [t["speaker"] for t in transcript.turns] == [("SPEAKER_00", "SPEAKER_01")[n % 2]
                                                       for n in range(len(dialogue.turns))], transcript.turns
    # the turns, in order: one segment per sentence, never one across two speakers
    turns = [s["speaker"] for s in transcript.segments]
    assert turns[0] == "SPEAKER_00" and set(turns) == {"SPEAKER_00", "SPEAKER_01"}
    for segment in transcript.segments:
        assert {w["speaker"] for w in segment["words"]} == {segment["speaker"]}, segment
    changes = sum(a != b for a, b in itertools.pairwise(turns))
    assert changes == len(dialogue.turns) - 1, (turns, [t.speaker for t in dialogue.turns])
    diarization = transcript.stages["diarization"]
    assert diarization["backend"] == "campplus" and diarization["speakers_found"] == 2
    assert 0 < diarization["seconds"] < dialogue.seconds
    diarizing = [percent for stage, percent in progress if stage is Stage.DIARIZING]
    assert diarizing[0] == 0.0 and max(diarizing) > 50.0, diarizing
    assert transcript.warnings == ()


def test_hints_bound_the_speaker_count(tmp_path: Path, dialogue: Dialogue) -> None:
    asr = engine(tmp_path)
    one = asr.transcribe(load_audio(dialogue.path), TranscriptionSettings(
        "base", "en", 0.0, "int8", "cpu", diarize=True, max_speakers=1), lambda *_: None)
    assert {s["speaker"] for s in one.segments} == {"SPEAKER_00"}
    three = asr.transcribe(load_audio(dialogue.path), TranscriptionSettings(
        "base", "en", 0.0, "int8", "cpu", diarize=True, min_speakers=3), lambda *_: None)
    assert three.stages["diarization"]["speakers_found"] == 3


def test_silence_and_a_half_second_utterance_give_sane_answers(tmp_path: Path, speech_dir: Path) -> None:
    asr = engine(tmp_path)
    silence = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(silence), "trim", "0", "5"], check=True)
    quiet = asr.transcribe(load_audio(silence), DIARIZE, lambda *_: None)
    assert quiet.segments == [] and "diarization" not in quiet.stages
    short = synthesise(speech_dir / "yes.wav", "Yes.", "en")
    subprocess.run(["sox", str(short), str(tmp_path / "yes.wav"), "silence", "1", "0.02", "0.5%", "reverse",
                    "silence", "1", "0.02", "0.5%", "reverse"], check=True)
    answer = asr.transcribe(load_audio(tmp_path / "yes.wav"), DIARIZE, lambda *_: None)
    assert answer.stages["diarization"]["speakers_found"] == 1, answer
    assert all(s["speaker"] == "SPEAKER_00" for s in answer.segments)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_without_an_intact_speaker_model_the_transcript_is_kept_with_a_warning(
        tmp_path: Path, english: Speech, damage: str) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "base").symlink_to(REPO / "models" / "base")
    if damage == "corrupt":
        weights = models / SPEAKER_WEIGHTS.name / SPEAKER_WEIGHTS.file
        weights.parent.mkdir()
        shutil.copy(REPO / "models" / SPEAKER_WEIGHTS.name / SPEAKER_WEIGHTS.file, weights)
        with weights.open("r+b") as handle:
            handle.seek(1000)
            handle.write(b"\0" * 64)
    transcript = engine(tmp_path, models).transcribe(load_audio(english.path), DIARIZE, lambda *_: None)
    assert transcript.text and all(segment["words"] for segment in transcript.segments)
    assert not any("speaker" in segment for segment in transcript.segments)
    [warning] = transcript.warnings
    assert warning.startswith("diarization skipped")
    assert ("models install speakers" if damage == "missing" else "corrupt") in warning, warning
    assert "diarization" not in transcript.stages


def test_the_daemon_writes_speakers_into_the_result_and_its_renderings(start_api, dialogue: Dialogue) -> None:
    api = start_api({"whisperx": {"language": "en"}}, engine=WhisperXEngine)
    (api.shared / ".pause").touch()
    shutil.copy(dialogue.path, api.shared / "звонок.wav")
    request = {"filename": "звонок.wav", "diarize": True, "max_speakers": 2}
    response = api.client.post("/transcribe", json=request)
    assert response.status_code == 202, response.text
    (api.shared / ".pause").unlink()
    done = api.client.post("/transcribe", json={**request, "wait": 180}, timeout=200)
    assert done.status_code == 200, done.text
    result = done.json()["result"]
    speakers = result["transcription"]["speakers"]
    assert [s["id"] for s in speakers] == ["SPEAKER_00", "SPEAKER_01"]
    assert sum(s["segments"] for s in speakers) == len(result["transcription"]["segments"])
    assert all(s["talk_seconds"] > 2 and s["words"] > 5 for s in speakers), speakers
    assert result["metadata"]["diarization"]["backend"] == "campplus"
    turns = result["transcription"]["turns"]
    assert len(turns) == len(dialogue.turns) and {t["speaker"] for t in turns} == {"SPEAKER_00", "SPEAKER_01"}
    assert result["settings"]["diarize"] is True and result["settings"]["word_timestamps"] is True
    vtt = api.client.get("/result/звонок.wav", params={"format": "vtt"}).text
    assert "<v SPEAKER_00>" in vtt and "<v SPEAKER_01>" in vtt
    txt = api.client.get("/result/звонок.wav", params={"format": "txt"}).text
    assert txt.startswith("SPEAKER_00: ") and "\nSPEAKER_01: " in txt


def test_pieces_of_a_decoded_recording_embed_as_the_whole_does(dialogue: Dialogue,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "PIECE", 5.0)  # pieces of 5 s overlapping by 3 s: windows at every seam
    windows = embeddings.windows_of([(0.0, dialogue.seconds)], dialogue.seconds)
    embedder = embeddings.SpeakerEmbedder(speaker_weights(REPO / "models"), "cpu")
    whole = embedder.embed(embeddings.InMemory(load_audio(dialogue.path).samples), windows)
    pieces = embedder.embed(embeddings.Decoded(dialogue.path, dialogue.seconds), windows)
    assert len(windows) > 20 and np.allclose(whole, pieces, atol=1e-4)


def test_a_long_call_diarized_window_by_window_gets_the_speakers_of_the_whole(
        tmp_path: Path, dialogue: Dialogue, monkeypatch: pytest.MonkeyPatch) -> None:
    recording = tmp_path / "long-call.wav"  # ~150 s: the dialogue 7 times, each a little faster
    copies = []
    for number in range(7):
        copies.append(tmp_path / f"copy-{number}.wav")
        subprocess.run(["sox", str(dialogue.path), str(copies[-1]), "tempo", str(1 + number * 0.03)], check=True)
    subprocess.run(["sox", *map(str, copies), str(recording)], check=True)
    monkeypatch.setattr(asr_module, "WINDOW_SECONDS", 60.0)  # windows of ~130 s, the least they can be
    asr = engine(tmp_path)
    two = TranscriptionSettings("base", "en", 0.0, "int8", "cpu", diarize=True, min_speakers=2, max_speakers=2)
    windowed = load_audio(recording, window_seconds=asr.window_for(two))
    assert windowed.rest is not None
    by_windows = asr.transcribe(windowed, two, lambda *_: None)
    whole = asr.transcribe(load_audio(recording), two, lambda *_: None)
    assert by_windows.stages["diarization"]["speakers_found"] == 2
    assert [s["speaker"] for s in by_windows.segments] == [s["speaker"] for s in whole.segments]
    assert by_windows.turns == whole.turns
