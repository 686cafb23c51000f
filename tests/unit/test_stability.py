from __future__ import annotations

import pytest

from transcriber.folder.stability import Signature, StabilityTracker

# Each step: (time, size, mtime) observed; expected: the times at which the file is released.
GROWING = [(0.0, 10, 1), (1.0, 20, 2), (2.0, 30, 3), (3.0, 30, 3), (4.0, 30, 3), (5.0, 30, 3)]


@pytest.mark.parametrize(
    ("window", "steps", "released_at"),
    [
        (2.0, [(0.0, 10, 1), (1.0, 10, 1), (2.0, 10, 1)], 2.0),
        (2.0, GROWING, 4.0),  # stable from t=2 on, released 2 s later
        (2.0, [(0.0, 10, 1), (1.5, 10, 2), (3.0, 10, 2), (3.5, 10, 2)], 3.5),  # mtime touched at 1.5
        (0.0, [(0.0, 10, 1)], 0.0),
        (5.0, GROWING, None),
    ],
)
def test_release_only_after_an_unchanged_window(window, steps, released_at) -> None:
    tracker = StabilityTracker(window)
    released = None
    for now, size, mtime in steps:
        tracker.observe("f.wav", Signature(size, mtime), now)
        if tracker.pop_ready(now) == ["f.wav"] and released is None:
            released = now
    assert released == released_at


def test_a_released_file_is_no_longer_tracked_and_forget_works() -> None:
    tracker = StabilityTracker(1.0)
    tracker.observe("a", Signature(1, 1), 0.0)
    tracker.observe("b", Signature(1, 1), 0.0)
    tracker.forget("b")
    assert tracker.pop_ready(1.0) == ["a"]
    assert tracker.pop_ready(2.0) == []
    assert len(tracker) == 0


def test_an_event_restarts_the_window_even_with_the_same_stat() -> None:
    tracker = StabilityTracker(1.0)
    tracker.observe("a", Signature(1, 1), 0.0)
    tracker.touch("a", 0.8)
    assert tracker.pop_ready(1.5) == []
    assert tracker.pop_ready(1.8) == ["a"]


def test_files_ready_together_come_out_oldest_first() -> None:
    tracker = StabilityTracker(0.0)
    tracker.observe("b-new", Signature(1, 300), 0.0)
    tracker.observe("c-old", Signature(1, 100), 0.0)
    tracker.observe("a-old", Signature(1, 100), 0.0)
    assert tracker.pop_ready(0.0) == ["a-old", "c-old", "b-new"]


def test_a_closed_file_needs_only_the_short_window_until_it_changes_again() -> None:
    tracker = StabilityTracker(2.0, closed_window_seconds=0.25)
    tracker.observe("a", Signature(10, 1), 0.0)
    tracker.mark_closed("a")
    assert tracker.pop_ready(0.2) == []
    assert tracker.pop_ready(0.25) == ["a"]
    tracker.observe("b", Signature(10, 1), 0.0)
    tracker.mark_closed("b")
    tracker.observe("b", Signature(20, 2), 0.1)  # reopened and written again: the full window
    assert tracker.pop_ready(1.0) == []
    assert tracker.pop_ready(2.1) == ["b"]
    tracker.observe("c", Signature(1, 1), 0.0)
    tracker.mark_closed("c")
    tracker.touch("c", 0.1)  # an event without a close: the writer is back
    assert tracker.pop_ready(1.0) == []
    assert StabilityTracker(0.5, closed_window_seconds=3.0).closed_window_seconds == 0.5
