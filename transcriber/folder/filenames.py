"""Filenames that come from clients: validated before they touch the disk.

A requested name must stay inside the shared folder whatever it contains:
``../x``, absolute paths, backslashes, NUL and control characters, fullwidth
dots and slashes (which NFKC folds into ``.`` and ``/``), a leading dot,
more than 255 bytes, or a symlink that points outside.  Names are compared
in NFC, so a file written by a macOS client in NFD is found by its NFC twin.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from transcriber.errors import InvalidFilename
from transcriber.folder.layout import MANUAL_REVIEW, SharedFolder, is_audio_name

MAX_NAME_BYTES = 255


def validate(name: object, folder: SharedFolder) -> str:
    """The NFC form of ``name``, or InvalidFilename saying what is wrong."""
    if not isinstance(name, str) or not name:
        raise InvalidFilename("the filename must be a non-empty string")
    name = unicodedata.normalize("NFC", name)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name):
        raise InvalidFilename("the filename contains control characters")
    folded = unicodedata.normalize("NFKC", name)
    if "\\" in folded or folded.startswith("/"):
        raise InvalidFilename("the filename must be relative and use no backslashes")
    parts = folded.split("/")
    if len(parts) > 1 and not folder.recursive:
        raise InvalidFilename("the filename must not contain '/' (subfolders are not watched)")
    for part in parts:
        if not part or part.startswith(".") or part in ("..", "."):
            raise InvalidFilename("no part of the filename may be empty or start with a dot")
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidFilename(f"the filename is longer than {MAX_NAME_BYTES} bytes")
    if parts[0] == MANUAL_REVIEW:
        raise InvalidFilename("files in manual_review/ are addressed by their own name")
    if folded != name and ("/" in folded) != ("/" in name):
        raise InvalidFilename("the filename contains characters that look like path separators")
    if not is_audio_name(parts[-1], folder.extensions):
        raise InvalidFilename(
            f"not a supported audio file name (extensions: {', '.join(sorted(folder.extensions))})"
        )
    return name


def locate(name: str, directory: Path, root: Path) -> Path | None:
    """The path of ``name`` (validated NFC) in ``directory``, or None.

    Falls back to an NFD (or otherwise differently normalised) twin on disk.
    Raises InvalidFilename for a symlink that leads outside ``root``.
    """
    candidate = directory / name
    if not os.path.lexists(candidate):
        twin = _twin(name, directory)
        if twin is None:
            return None
        candidate = twin
    real = Path(os.path.realpath(candidate))
    if real != Path(os.path.realpath(root)) and Path(os.path.realpath(root)) not in real.parents:
        raise InvalidFilename("the file is a link to somewhere outside the shared folder")
    if not real.is_file():
        return None
    return candidate


def destination(name: str, root: Path) -> Path:
    """Where a file of ``name`` (validated NFC) is to be written in ``root``: the file already
    there under that name or its differently normalised twin, else ``root / name``.
    Raises InvalidFilename when the path would lead outside ``root`` through a link (a
    linked subfolder, or a link in the name's place)."""
    existing = locate(name, root, root)  # raises for a link to outside
    if existing is not None:
        return existing
    target = root / name
    if os.path.islink(target):
        raise InvalidFilename("the name is a link (one that does not lead to a file)")
    real_root = Path(os.path.realpath(root))
    real_parent = Path(os.path.realpath(target.parent))
    if real_parent != real_root and real_root not in real_parent.parents:
        raise InvalidFilename("the file's folder is a link to somewhere outside the shared folder")
    return target


def _twin(name: str, directory: Path) -> Path | None:
    *folders, base = name.split("/")
    parent = directory.joinpath(*folders)
    try:
        entries = os.listdir(parent)
    except OSError:
        return None
    for entry in entries:
        if unicodedata.normalize("NFC", entry) == base:
            return parent / entry
    return None
