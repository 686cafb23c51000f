from __future__ import annotations

import os
from pathlib import Path

import pytest

from transcriber.errors import AlreadyRunningError
from transcriber.folder.lock import InstanceLock


def test_second_holder_is_refused_naming_the_lock_and_pid(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / ".transcriber.lock")
    first.acquire()
    with pytest.raises(AlreadyRunningError) as caught:
        InstanceLock(tmp_path / ".transcriber.lock").acquire()
    assert f"pid {os.getpid()}" in caught.value.message
    assert str(tmp_path / ".transcriber.lock") in caught.value.message
    assert first.holder_pid() == os.getpid()  # the loser did not wipe the holder's pid
    first.release()
    again = InstanceLock(tmp_path / ".transcriber.lock")
    again.acquire()
    again.release()
