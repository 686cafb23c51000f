from __future__ import annotations

import threading

from transcriber.scheduler.queue import JobQueue


def drain(queue: JobQueue) -> list[str]:
    names = []
    while (name := queue.take(timeout=0)) is not None:
        names.append(name)
    return names


def test_priority_then_fifo() -> None:
    queue = JobQueue()
    for name, priority in [("s1", 2), ("a1", 1), ("s2", 2), ("a2", 1), ("s3", 2)]:
        queue.put(name, priority)
    assert drain(queue) == ["a1", "a2", "s1", "s2", "s3"]


def test_a_file_is_queued_at_most_once() -> None:
    queue = JobQueue()
    assert queue.put("a", 2)
    assert not queue.put("a", 2)
    assert len(queue) == 1
    assert drain(queue) == ["a"]


def test_requeueing_with_a_higher_priority_moves_it_up() -> None:
    queue = JobQueue()
    queue.put("s1", 2)
    queue.put("s2", 2)
    assert not queue.put("s2", 1)
    assert drain(queue) == ["s2", "s1"]


def test_remove_and_reprioritise_by_filename() -> None:
    queue = JobQueue()
    for name in ("a", "b", "c"):
        queue.put(name, 2)
    assert queue.remove("b")
    assert not queue.remove("b")
    assert queue.reprioritise("c", 1)
    assert not queue.reprioritise("zzz", 1)
    assert queue.position("c") == 1 and queue.position("a") == 2 and queue.position("b") is None
    assert queue.depth_by_priority() == {1: 1, 2: 1}
    assert drain(queue) == ["c", "a"]


def test_take_blocks_until_something_arrives() -> None:
    queue = JobQueue()
    taken: list[str | None] = []
    thread = threading.Thread(target=lambda: taken.append(queue.take(timeout=5)))
    thread.start()
    queue.put("late", 2)
    thread.join(5)
    assert taken == ["late"]
    assert queue.take(timeout=0.01) is None


def test_put_back_returns_a_taken_file_to_the_head_of_its_priority() -> None:
    queue = JobQueue()
    for name in ("a", "b"):
        queue.put(name, 2)
    queue.put("urgent", 1)
    assert queue.take(timeout=0) == "urgent"
    assert queue.take(timeout=0) == "a"
    queue.put_back("a", 2)
    assert queue.position("a") == 1
    assert drain(queue) == ["a", "b"]
