"""What this host can run: devices and compute types, asked of CTranslate2.

Settings the host cannot serve are refused where they are given (a request's
``422``, or the daemon's start for the configured defaults) instead of failing
in the worker: ``compute_type: float16`` on a CPU made CTranslate2 raise
``ValueError`` and sent a good file to ``manual_review/`` after a ``202``, and
``device: cuda`` on a host without a GPU did the same after three attempts
(issue 13).  CTranslate2 is the engine's backend and imports no torch, so the
daemon can ask it (about 0.1 s, once).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from transcriber.config import COMPUTE_TYPES
from transcriber.errors import UnsupportedSettingError
from transcriber.jobs import TranscriptionSettings

log = logging.getLogger("Capabilities")

# CTranslate2 picks the model's own type for "default" on any device.
ALWAYS_SUPPORTED_COMPUTE_TYPES = frozenset({"default"})


@dataclass(frozen=True)
class HostCapabilities:
    compute_types: Mapping[str, frozenset[str]]  # device -> the compute types it runs

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted(self.compute_types))

    def check(self, settings: TranscriptionSettings) -> None:
        """Raise :class:`UnsupportedSettingError` naming the setting when the host cannot run it."""
        supported = self.compute_types.get(settings.device)
        if supported is None:
            raise UnsupportedSettingError(
                "device", f"device {settings.device!r} is not available on this host "
                f"(no CUDA GPU is visible); this host supports: {', '.join(self.devices)}", self.devices)
        if settings.compute_type not in supported:
            choices = tuple(sorted(supported))
            raise UnsupportedSettingError(
                "compute_type", f"compute_type {settings.compute_type!r} is not supported on {settings.device} "
                f"on this host; it supports: {', '.join(choices)}", choices)


@functools.cache
def host_capabilities() -> HostCapabilities:
    try:
        import ctranslate2
    except ImportError:  # no engine installed at all: nothing to refuse here, the worker reports it
        log.warning("CTranslate2 is not installed; settings are not checked against the host")
        return HostCapabilities({device: frozenset(COMPUTE_TYPES) for device in ("cpu", "cuda")})
    found = {"cpu": frozenset(ctranslate2.get_supported_compute_types("cpu")) | ALWAYS_SUPPORTED_COMPUTE_TYPES}
    try:
        if ctranslate2.get_cuda_device_count() > 0:
            found["cuda"] = frozenset(ctranslate2.get_supported_compute_types("cuda")) | ALWAYS_SUPPORTED_COMPUTE_TYPES
    except RuntimeError as exc:  # a driver too old for the runtime: no usable GPU
        log.info("No usable CUDA device: %s", exc)
    return HostCapabilities(found)
