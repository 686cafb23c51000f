"""Files that arrive through the API (POST /upload): written where the watcher cannot see
them until they are whole.

An :class:`Incoming` file is a hidden temporary name in the shared folder
(``.upload-…part``: a dotfile and a temporary suffix, both ignored by the scan),
hashed as it is written, fsynced, and only then given its name, on the same
file system, so the watcher sees a complete file or nothing.  Whatever goes
wrong before that (a body over the limit, a client that went away, a full disk)
:meth:`Incoming.discard` removes it.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from transcriber.folder.layout import unique_path
from transcriber.folder.sidecars import SIDECAR_MODE, UPLOAD_PREFIX, UPLOAD_SUFFIX, fsync_folder

log = logging.getLogger("Folder")

HASH_BLOCK = 1024 * 1024


class Existing(enum.StrEnum):
    """What an upload does to a file of its name with other content."""

    REFUSE = "refuse"
    OVERWRITE = "overwrite"
    RENAME = "rename"  # name (2).mp3


class Placed(enum.StrEnum):
    NEW = "new"
    SAME = "same"  # the file was already there with this content: the upload is dropped
    REPLACED = "replaced"
    RENAMED = "renamed"


class NameTaken(Exception):
    """A file of that name is there with other content, and the upload may not replace it."""


@dataclass(frozen=True)
class Arrival:
    path: Path
    placed: Placed
    size: int
    sha256: str


class Incoming:
    """An upload being written into ``folder``, hashed as it grows."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        fd, name = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=UPLOAD_SUFFIX, dir=folder)
        self.path = Path(name)
        try:
            os.fchmod(fd, SIDECAR_MODE)  # readable by the share's other users, as the sidecars are
            self._file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self.path.unlink()
            raise
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def place(self, target: Path, existing: Existing, formats: Iterable[str] = ()) -> Arrival:
        """Durably under ``target``'s name (or ``name (2).mp3``); raises :class:`NameTaken`,
        and OSError when the folder refuses.  The temporary file is gone either way."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            digest = self._hash.hexdigest()
            placed = self._move(target, existing, digest, tuple(formats))
        finally:
            self.discard()
        try:  # the file is whole and named: a folder that cannot be synced is not a reason to lose it
            fsync_folder(placed[0].parent)
        except OSError as exc:
            log.warning("Cannot sync the folder of %s: %s", placed[0].name, exc)
        return Arrival(placed[0], placed[1], self.size, digest)

    def _move(self, target: Path, existing: Existing, digest: str, formats: tuple[str, ...]) -> tuple[Path, Placed]:
        if not target.parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, "no such folder in the shared folder", str(target.parent))
        if not os.path.lexists(target):
            with contextlib.suppress(FileExistsError):  # another upload or a copy won the name meanwhile
                _link(self.path, target)
                return target, Placed.NEW
        if target.is_file() and target.stat().st_size == self.size and file_sha256(target) == digest:
            return target, Placed.SAME
        if existing is Existing.OVERWRITE:
            os.replace(self.path, target)
            return target, Placed.REPLACED
        if existing is Existing.RENAME:
            for _ in range(100):
                free = unique_path(target, formats)
                with contextlib.suppress(FileExistsError):
                    _link(self.path, free)
                    return free, Placed.RENAMED
        raise NameTaken(target.name)


def _link(source: Path, target: Path) -> None:
    """``source`` under ``target``'s name, never over a file that is there (FileExistsError);
    a file system without hard links (some network shares) gets a rename after a check."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from exc
        os.rename(source, target)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
