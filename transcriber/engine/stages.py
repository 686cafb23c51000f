"""The stages after recognition: word alignment and speaker diarization.

Each stage loads its model once (keyed by what it depends on: the language,
the device) and keeps it warm with the recognition model; ``unload`` frees
it with the recognition model when the worker has been idle.  A stage whose
model cannot be had (not installed, no network to fetch it, no model for the
language) is skipped with a warning in the result; anything that goes wrong
while it *runs* (out of memory above all) is the job's failure, classified
at the engine boundary like recognition's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from transcriber.domain.job import Stage
from transcriber.errors import ModelError

log = logging.getLogger("Engine")

Segments = list[dict[str, Any]]
# What makes a stage's model unavailable rather than broken: missing files or a
# hub out of reach (OSError, huggingface_hub's errors derive from it), no model
# for the language (ValueError), a library or extra not installed (ImportError), a
# packaged model not installed or corrupt (ModelError).
UNAVAILABLE = (OSError, ValueError, ImportError, ModelError)


class PostStage:
    """One stage after recognition: ``load(key)`` builds its model for ``key``;
    ``run(model, segments, samples, language, **options)`` returns what the stage made of them."""

    def __init__(self, name: str, stage: Stage, load: Callable[[Hashable], Any],
                 run: Callable[..., Any]) -> None:
        self.name = name  # in warnings: "alignment", "diarization"
        self.stage = stage  # the progress stage reported while it runs
        self._load = load
        self._run = run
        self._models: dict[Hashable, Any] = {}

    def loaded(self) -> list[Hashable]:
        return list(self._models)

    def apply(self, key: Hashable, segments: Segments, samples: Any, language: str,
              warnings: list[str], **options: Any) -> Any | None:
        """What the stage's ``run`` returns, or None (and a warning) when its model is unavailable.

        ``samples``: the recording as the stage takes it (an array; diarization's ``Audio``)."""
        if not self.ready(key, warnings):
            return None
        return self._run(self._models[key], segments, samples, language, **options)

    def ready(self, key: Hashable, warnings: list[str]) -> bool:
        """Whether the model for ``key`` is loaded (loading it now); if it cannot be, a warning says why."""
        if key in self._models:
            return True
        try:
            self._models[key] = self._load(key)
        except UNAVAILABLE as exc:
            message = f"{self.name} skipped: its model is not available ({type(exc).__name__}: {str(exc)[:400]})"
            log.warning(message)
            warnings.append(message)
            return False
        log.info("Loaded the %s model for %s", self.name, key)
        return True

    def unload(self) -> None:
        self._models.clear()
