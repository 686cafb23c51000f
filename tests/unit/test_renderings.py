"""``output.write_formats``: the renderings beside a ``.result`` (issue 13, point 17), and the
earlier run's transcript moving to review with a forced re-run that failed (point 6)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers import write_tone
from transcriber.config import DEFAULT_AUDIO_EXTENSIONS
from transcriber.domain.job import Source, fail_attempt, new_job, start_attempt
from transcriber.domain.settings import TranscriptionSettings
from transcriber.errors import AudioDecodeError
from transcriber.exports import EXPORTS, FILE_FORMATS, render_bytes
from transcriber.folder import sidecars
from transcriber.folder.layout import SharedFolder, is_audio_name
from transcriber.scheduler.store import JobStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = TranscriptionSettings("base", "ru", 0.1, "int8", "cpu")
RESULT = {
    "task_id": "t-1", "filename": "a.wav",
    "transcription": {
        "text": "привет мир", "language": "ru",
        "segments": [{"start": 0.0, "end": 1.5, "text": "привет"}, {"start": 1.5, "end": 2.0, "text": "мир"}],
    },
}


def test_the_formats_that_may_be_written_are_the_configurable_ones() -> None:
    assert tuple(EXPORTS) == FILE_FORMATS
    assert set(FILE_FORMATS) == {"json", "txt", "srt", "vtt", "tsv", "md", "docx"}


@pytest.mark.parametrize("name", ["call.mp3.srt", "call.mp3.txt", "call.mp3.vtt", "call.mp3.tsv", "call.mp3.json",
                                  "call.mp3.md", "call.mp3.docx", "CALL.MP3.SRT"])
def test_renderings_never_become_jobs_even_when_their_format_is_an_audio_extension(name: str) -> None:
    assert not is_audio_name(name, DEFAULT_AUDIO_EXTENSIONS)
    assert not is_audio_name(name, (*DEFAULT_AUDIO_EXTENSIONS, *FILE_FORMATS))


def test_a_file_of_a_rendering_format_without_an_audio_name_before_it_still_counts() -> None:
    extensions = (*DEFAULT_AUDIO_EXTENSIONS, "json")
    assert is_audio_name("export.json", extensions)  # configured as audio: a job
    assert not is_audio_name("export.json.json", extensions)  # the rendering of export.json
    assert not is_audio_name("export.mp3.json", extensions)
    assert is_audio_name("export.data.json", extensions)


def test_the_snapshot_sees_renderings_as_neither_audio_nor_sidecars(tmp_path: Path) -> None:
    folder = SharedFolder(tmp_path, (*DEFAULT_AUDIO_EXTENSIONS, *FILE_FORMATS))
    folder.prepare()
    write_tone(tmp_path / "a.wav")
    (tmp_path / "a.wav.result").write_text("{}")
    for fmt in FILE_FORMATS:
        (tmp_path / f"a.wav.{fmt}").write_text("x")
    snapshot = folder.snapshot()
    assert set(snapshot.audio) == {"a.wav"}
    assert snapshot.results == {"a.wav"} and not snapshot.in_progress
    assert folder.filename_of(tmp_path / "a.wav.srt") is None


def make_store(tmp_path: Path, write_formats: tuple[str, ...]) -> JobStore:
    folder = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS)
    folder.prepare()
    return JobStore(folder, 2, write_formats)


def running_job(store: JobStore, tmp_path: Path, name: str = "a.wav"):
    write_tone(tmp_path / name)
    job = store.add(new_job(name, SETTINGS, Source.SCAN, 3, NOW))
    return store.save(start_attempt(job, NOW))


def test_complete_writes_each_configured_rendering_beside_the_result(tmp_path: Path) -> None:
    store = make_store(tmp_path, ("srt", "txt", "json", "vtt", "tsv"))
    store.complete(running_job(store, tmp_path), RESULT)
    for fmt in ("srt", "txt", "vtt", "tsv"):
        assert (tmp_path / f"a.wav.{fmt}").read_text(encoding="utf-8") == render_bytes(RESULT, fmt).decode(), fmt
    assert (tmp_path / "a.wav.json").read_bytes() == (tmp_path / "a.wav.result").read_bytes()
    assert json.loads((tmp_path / "a.wav.json").read_text(encoding="utf-8")) == RESULT
    assert oct((tmp_path / "a.wav.srt").stat().st_mode & 0o777) == "0o644"
    assert not (tmp_path / "a.wav.in_progress").exists()
    assert not [p for p in tmp_path.iterdir() if sidecars.is_temp_name(p.name)]


def test_without_write_formats_nothing_but_the_result_is_written(tmp_path: Path) -> None:
    store = make_store(tmp_path, ())
    store.complete(running_job(store, tmp_path), RESULT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "a.wav.result", "manual_review"]


def test_a_rendering_that_cannot_be_written_does_not_fail_the_job(tmp_path: Path, monkeypatch, caplog) -> None:
    store = make_store(tmp_path, ("srt", "txt"))
    real = sidecars.write_bytes_atomic

    def full_for_srt(path: Path, data: bytes, durable: bool = True, sync_folder: bool = True) -> None:
        if path.name.endswith(".srt"):
            raise OSError(28, "No space left on device")
        real(path, data, durable, sync_folder)

    monkeypatch.setattr(sidecars, "write_bytes_atomic", full_for_srt)
    (tmp_path / "a.wav.srt").write_text("an earlier run's subtitles")  # would now be the wrong text
    job = running_job(store, tmp_path)
    store.complete(job, RESULT)
    assert json.loads((tmp_path / "a.wav.result").read_text(encoding="utf-8")) == RESULT
    assert not (tmp_path / "a.wav.in_progress").exists() and store.get("a.wav") is None
    assert (tmp_path / "a.wav.txt").exists() and not (tmp_path / "a.wav.srt").exists()
    assert "could not write a.wav.srt" in caplog.text
    assert store.refused_writes() == {}  # not a sidecar: /health stays healthy


def test_a_rerun_replaces_the_configured_renderings_and_leaves_others(tmp_path: Path) -> None:
    store = make_store(tmp_path, ("srt",))
    (tmp_path / "a.wav.srt").write_text("old subtitles")
    (tmp_path / "a.wav.vtt").write_text("written under an earlier config")
    store.complete(running_job(store, tmp_path), RESULT)
    assert (tmp_path / "a.wav.srt").read_text(encoding="utf-8") == render_bytes(RESULT, "srt").decode()
    assert (tmp_path / "a.wav.vtt").read_text() == "written under an earlier config"


def test_quarantine_takes_an_earlier_result_and_its_renderings_along(tmp_path: Path) -> None:
    store = make_store(tmp_path, ("srt", "txt"))
    (tmp_path / "a.wav.result").write_text('{"task_id": "earlier"}')
    (tmp_path / "a.wav.srt").write_text("earlier subtitles")
    (tmp_path / "a.wav.txt").write_text("earlier text")
    (tmp_path / "a.wav.vtt").write_text("not ours: no such format configured")
    failed = fail_attempt(running_job(store, tmp_path), AudioDecodeError("broken"), NOW, None)
    target = store.quarantine(failed)
    review = tmp_path / "manual_review"
    assert target == review / "a.wav"
    assert sorted(p.name for p in review.iterdir()) == [
        "a.wav", "a.wav.in_progress", "a.wav.result", "a.wav.srt", "a.wav.txt"]
    assert (review / "a.wav.result").read_text() == '{"task_id": "earlier"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav.vtt", "manual_review"]


def test_quarantine_finishing_an_interrupted_move_takes_the_result_too(tmp_path: Path) -> None:
    folder = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS)
    folder.prepare()
    write_tone(tmp_path / "manual_review" / "a.wav")  # the audio moved, then the daemon died
    (tmp_path / "a.wav.result").write_text('{"task_id": "earlier"}')
    (tmp_path / "a.wav.srt").write_text("earlier subtitles")
    (tmp_path / "a.wav.in_progress").write_text('{"status": "error"}')
    folder.quarantine("a.wav", ("srt",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manual_review"]
    assert sorted(p.name for p in (tmp_path / "manual_review").iterdir()) == [
        "a.wav", "a.wav.in_progress", "a.wav.result", "a.wav.srt"]


def test_quarantine_never_puts_a_result_over_one_already_in_review(tmp_path: Path) -> None:
    folder = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS)
    folder.prepare()
    (tmp_path / "manual_review" / "a.wav.result").write_text("kept from before")  # no audio beside it
    write_tone(tmp_path / "a.wav")
    (tmp_path / "a.wav.result").write_text("earlier")
    (tmp_path / "a.wav.in_progress").write_text("{}")
    target = folder.quarantine("a.wav")
    assert target.name == "a (2).wav"
    assert (tmp_path / "manual_review" / "a.wav.result").read_text() == "kept from before"
    assert (tmp_path / "manual_review" / "a (2).wav.result").read_text() == "earlier"
    assert not os.path.lexists(tmp_path / "a.wav.result")


DIARIZED = {"transcription": {"text": "Hello there. Hi <you> & me. Bye.", "segments": [
    {"start": 0.0, "end": 1.2, "text": "Hello there.", "speaker": "SPEAKER_00"},
    {"start": 1.5, "end": 2.5, "text": "Hi <you> & me.", "speaker": "SPEAKER_01"},
    {"start": 2.6, "end": 3.0, "text": "Bye.", "speaker": "SPEAKER_01"}]}}


def test_diarized_renderings_show_the_speakers() -> None:
    assert render_bytes(DIARIZED, "txt").decode() == "SPEAKER_00: Hello there.\nSPEAKER_01: Hi <you> & me. Bye.\n"
    vtt = render_bytes(DIARIZED, "vtt").decode()
    assert "00:00:01.500 --> 00:00:02.500\n<v SPEAKER_01>Hi &lt;you&gt; &amp; me.\n" in vtt
    assert "<v SPEAKER_00>Hello there." in vtt
    assert "1\n00:00:00,000 --> 00:00:01,200\n[SPEAKER_00] Hello there.\n" in render_bytes(DIARIZED, "srt").decode()
    assert render_bytes(DIARIZED, "tsv").decode().splitlines()[:2] == ["start\tend\tspeaker\ttext",
                                                                 "0\t1200\tSPEAKER_00\tHello there."]
    assert render_bytes(RESULT, "tsv").decode().splitlines()[0] == "start\tend\ttext"  # without speakers as before


def test_subtitles_escape_speaker_names_and_never_end_a_cue_at_its_start() -> None:
    result = {"transcription": {"text": "yes", "segments": [
        {"start": 1.0, "end": 1.0, "text": "yes <b>", "speaker": "Ann <&> Bo"}]}}
    vtt = render_bytes(result, "vtt").decode()
    assert "00:00:01.000 --> 00:00:01.001\n<v Ann &lt;&amp;&gt; Bo>yes &lt;b&gt;\n" in vtt
    assert "00:00:01,000 --> 00:00:01,001\n" in render_bytes(result, "srt").decode()
