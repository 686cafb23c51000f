"""Long-polls (``POST /transcribe`` with ``wait``) wait here until the job store says the job ended."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from transcriber.scheduler.events import ENDINGS, JobEvent


class LongPollWaiters:
    """Long-polls wait here; the job store wakes them from the slot threads."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[str, list[asyncio.Future[None]]] = defaultdict(list)

    def on_event(self, event: JobEvent) -> None:
        if event.job is not None and event.event in ENDINGS and self.loop:
            self.loop.call_soon_threadsafe(self._wake, event.job.filename)

    def _wake(self, filename: str) -> None:
        for future in self._waiting.pop(filename, []):
            if not future.done():
                future.set_result(None)

    async def wait(self, filename: str, timeout: float, finished: Callable[[], bool]) -> None:
        """Until the job of ``filename`` ends or ``timeout`` passes; ``finished``
        is checked after registering, so an end just before is not missed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[filename].append(future)
        try:
            if not finished():
                await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            waiting = self._waiting.get(filename)
            if waiting and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._waiting[filename]
