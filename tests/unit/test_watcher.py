from __future__ import annotations

from pathlib import Path

import pytest

from transcriber.folder.watcher import choose_observer, filesystem_type

MOUNTS = """\
/dev/vda / ext4 rw 0 0
proc /proc proc rw 0 0
nas:/export /mnt/nas nfs4 rw 0 0
//server/share /mnt/smb cifs rw 0 0
/dev/vdb /mnt/nas/local ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "fs_type"),
    [("/srv/shared", "ext4"), ("/mnt/nas/calls", "nfs4"), ("/mnt/smb", "cifs"), ("/mnt/nas/local/x", "ext4")],
)
def test_filesystem_type_uses_the_longest_mount_prefix(tmp_path: Path, path: str, fs_type: str) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert filesystem_type(Path(path), mounts) == fs_type


@pytest.mark.parametrize(
    ("mode", "fs_type", "observer"),
    [
        ("auto", "ext4", "inotify"),
        ("auto", "nfs4", "polling"),
        ("auto", "cifs", "polling"),
        ("auto", "fuse.sshfs", "polling"),
        ("auto", None, "inotify"),
        ("polling", "ext4", "polling"),
        ("inotify", "nfs", "inotify"),
    ],
)
def test_observer_choice(mode: str, fs_type: str | None, observer: str) -> None:
    assert choose_observer(mode, fs_type) == observer
