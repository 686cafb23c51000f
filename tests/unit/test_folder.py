from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_tone
from transcriber.config import DEFAULT_AUDIO_EXTENSIONS
from transcriber.folder.layout import SharedFolder, is_audio_name


@pytest.mark.parametrize(
    ("name", "is_audio"),
    [
        ("call-001.mp3", True),
        ("CALL.MP3", True),
        ("звонок 1.wav", True),
        ("voice.oga", True),
        ("meeting.mkv", True),
        ("a.b.c.flac", True),
        (".hidden.mp3", False),
        ("~$temp.wav", False),
        ("call.mp3.in_progress", False),
        ("call.mp3.result", False),
        ("call.mp3.part", False),
        ("call.mp3.tmp", False),
        ("call.mp3.crdownload", False),
        ("call.mp3.filepart", False),
        ("call.mp3.partial", False),
        ("CALL.MP3.PART", False),
        ("notes.txt", False),
        ("mp3", False),
        (".mp3", False),
        ("", False),
    ],
)
def test_ignore_rules(name: str, is_audio: bool) -> None:
    assert is_audio_name(name, DEFAULT_AUDIO_EXTENSIONS) is is_audio


def test_snapshot_sees_audio_and_sidecars_but_not_subfolders(tmp_path: Path) -> None:
    folder = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS)
    folder.prepare()
    write_tone(tmp_path / "a.wav")
    write_tone(tmp_path / "b.wav")
    (tmp_path / "b.wav.result").write_text("{}")
    (tmp_path / "c.wav.in_progress").write_text("{}")
    write_tone(tmp_path / "sub" / "d.wav")
    write_tone(tmp_path / "manual_review" / "e.wav")
    snapshot = folder.snapshot()
    assert set(snapshot.audio) == {"a.wav", "b.wav"}
    assert snapshot.results == {"b.wav"}
    assert snapshot.in_progress == {"c.wav"}
    recursive = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS, recursive=True).snapshot()
    assert set(recursive.audio) == {"a.wav", "b.wav", "sub/d.wav"}


@pytest.mark.parametrize(
    ("relative", "recursive", "expected"),
    [
        ("a.wav", False, "a.wav"),
        ("sub/a.wav", False, None),
        ("sub/a.wav", True, "sub/a.wav"),
        (".git/a.wav", True, None),
        ("manual_review/a.wav", True, None),
        ("a.wav.result", False, None),
    ],
)
def test_filename_of_event_paths(tmp_path: Path, relative: str, recursive: bool, expected: str | None) -> None:
    folder = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS, recursive=recursive)
    assert folder.filename_of(tmp_path / relative) == expected
    assert folder.filename_of(Path("/elsewhere/a.wav")) is None


def test_quarantine_never_overwrites_an_earlier_file_in_review(tmp_path: Path) -> None:
    folder = SharedFolder(tmp_path, DEFAULT_AUDIO_EXTENSIONS)
    folder.prepare()
    for round_number in (1, 2, 3):
        (tmp_path / "bad.wav").write_text(f"round {round_number}")
        (tmp_path / "bad.wav.in_progress").write_text("{}")
        folder.quarantine("bad.wav")
    review = tmp_path / "manual_review"
    assert (review / "bad.wav").read_text() == "round 1"
    assert (review / "bad (2).wav").read_text() == "round 2"
    assert (review / "bad (3).wav").read_text() == "round 3"
    assert (review / "bad (3).wav.in_progress").exists()
    assert not (tmp_path / "bad.wav").exists() and not (tmp_path / "bad.wav.in_progress").exists()
