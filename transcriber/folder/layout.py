"""The shared folder: its layout, the ignore rules, listing, quarantine (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from transcriber.exports import FILE_FORMATS
from transcriber.folder.sidecars import EDITS_SUFFIX, IN_PROGRESS_SUFFIX, RESULT_SUFFIX, fsync_folder, is_temp_name

log = logging.getLogger("Folder")

MANUAL_REVIEW = "manual_review"
LOCK_NAME = ".transcriber.lock"
PAUSE_NAME = ".pause"
TEMPORARY_SUFFIXES = (".part", ".tmp", ".crdownload", ".filepart", ".partial")


def is_audio_name(name: str, extensions: Iterable[str]) -> bool:
    """True when ``name`` (a bare file name) should become a job.

    Dotfiles, our own sidecars, temporary download names and names without
    a known audio extension are ignored.  So are the daemon's renderings
    (``call.mp3.srt``, ``call.mp3.json``: an audio name plus a format of
    ``output.write_formats``), even where the configured extensions name
    such a format.  Case does not matter.
    """
    lowered = name.lower()
    if not name or name.startswith((".", "~")):
        return False
    if lowered.endswith((IN_PROGRESS_SUFFIX, RESULT_SUFFIX, EDITS_SUFFIX, *TEMPORARY_SUFFIXES)):
        return False
    stem, dot, extension = lowered.rpartition(".")
    if not (dot and stem) or extension not in extensions:
        return False
    return not (extension in FILE_FORMATS and is_audio_name(stem, extensions))


@dataclass
class FolderSnapshot:
    """One listing of the folder: audio files and which sidecars exist.

    Keys are filenames relative to the shared folder ("a.mp3", or
    "sub/a.mp3" when watching recursively).
    """

    audio: dict[str, os.stat_result] = field(default_factory=dict)
    results: set[str] = field(default_factory=set)
    in_progress: set[str] = field(default_factory=set)


class SharedFolder:
    def __init__(self, root: Path, extensions: Iterable[str], recursive: bool = False) -> None:
        self.root = root
        self.extensions = frozenset(extensions)
        self.recursive = recursive

    @property
    def manual_review(self) -> Path:
        return self.root / MANUAL_REVIEW

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def pause_path(self) -> Path:
        return self.root / PAUSE_NAME

    def is_paused(self) -> bool:
        return self.pause_path.exists()

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.manual_review.mkdir(exist_ok=True)

    def audio_path(self, filename: str) -> Path:
        return self.root / filename

    def filename_of(self, path: Path) -> str | None:
        """The job filename of an absolute path, or None if it is not a watched audio file."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return None
        parts = relative.parts
        if not parts or parts[0] == MANUAL_REVIEW or (len(parts) > 1 and not self.recursive):
            return None
        if any(part.startswith(".") for part in parts[:-1]):
            return None
        if not is_audio_name(parts[-1], self.extensions):
            return None
        return relative.as_posix()

    def snapshot(self) -> FolderSnapshot:
        """List the folder once; stats only audio files (one ``stat`` each, from scandir)."""
        snapshot = FolderSnapshot()
        for prefix, entry in self._walk(self.root, ""):
            name = entry.name
            filename = prefix + name
            if name.endswith(RESULT_SUFFIX):
                snapshot.results.add(filename[: -len(RESULT_SUFFIX)])
            elif name.endswith(IN_PROGRESS_SUFFIX):
                snapshot.in_progress.add(filename[: -len(IN_PROGRESS_SUFFIX)])
            elif is_audio_name(name, self.extensions):
                try:
                    if entry.is_file():
                        snapshot.audio[filename] = entry.stat()
                except OSError:
                    continue  # vanished between listing and stat
        return snapshot

    def _walk(self, folder: Path, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("Cannot list %s: %s", folder, exc)
            return
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if self.recursive and not entry.name.startswith(".") and not (
                    prefix == "" and entry.name == MANUAL_REVIEW
                ):
                    yield from self._walk(Path(entry.path), f"{prefix}{entry.name}/")
                continue
            yield prefix, entry

    def remove_stale_temp_files(self) -> None:
        """Delete the temp files of atomic writes that a killed run left behind.

        A SIGKILL between a temp file's creation and its ``os.replace`` leaves
        ``.tmp-*.json`` next to the sidecars, and nothing else ever removes it
        (found by tests/reliability/test_crash.py).  Only safe at start, with
        the instance lock held and before this run writes anything.
        """
        for _prefix, entry in [*self._walk(self.root, ""), *self._walk(self.manual_review, "")]:
            if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                log.info("Removed %s, left by an interrupted write", entry.path)

    def quarantine(self, filename: str, formats: Iterable[str] = ()) -> Path:
        """Move the audio and everything of it into ``manual_review/``: the
        ``.in_progress``, and the ``.result`` and renderings (``formats``, from
        ``output.write_formats``) of an earlier run that a failed forced re-run
        was to replace, so the file's whole state is in one place (issue 13).

        The audio moves first and the sidecar last: after a crash in between,
        the sidecar (status ``error``) is still in place and recovery finishes
        the move.  A name already in review gets a numbered twin, so nothing
        is overwritten.
        """
        formats = tuple(formats)
        source = self.audio_path(filename)
        sidecar = source.with_name(source.name + IN_PROGRESS_SUFFIX)
        if source.exists():
            target = unique_path(self.manual_review / source.name, formats)
            os.replace(source, target)
        else:  # finishing a move a crash interrupted: the audio is already there
            target = self.manual_review / source.name
        for suffix in companion_suffixes(formats):
            companion = source.with_name(source.name + suffix)
            if suffix != IN_PROGRESS_SUFFIX and os.path.lexists(companion):
                os.replace(companion, target.with_name(target.name + suffix))
        if sidecar.exists():
            os.replace(sidecar, target.with_name(target.name + IN_PROGRESS_SUFFIX))
        fsync_folder(self.manual_review)
        fsync_folder(source.parent)
        return target


def companion_suffixes(formats: Iterable[str] = ()) -> tuple[str, ...]:
    """What follows an audio name in the names of its own files: the sidecars (the job, the
    transcript, its corrections), then the renderings."""
    return (IN_PROGRESS_SUFFIX, RESULT_SUFFIX, EDITS_SUFFIX, *(f".{fmt}" for fmt in formats))


def unique_path(path: Path, formats: Iterable[str] = ()) -> Path:
    """``path`` if neither it nor any of its own files exists, else ``name (2).ext``, ``name (3).ext`` …"""
    suffixes = companion_suffixes(formats)

    def free(candidate: Path) -> bool:
        return not any(os.path.lexists(candidate.with_name(candidate.name + s)) for s in ("", *suffixes))

    if free(path):
        return path
    stem, suffix = path.stem, path.suffix
    for number in range(2, 10_000):
        candidate = path.with_name(f"{stem} ({number}){suffix}")
        if free(candidate):
            return candidate
    raise FileExistsError(f"no free name for {path.name} in {path.parent}")
