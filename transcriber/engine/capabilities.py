"""What this host can run: devices and compute types, asked of CTranslate2.

Settings the host cannot serve are refused where they are given (a request's
``422``, or the daemon's start for the configured defaults) instead of failing
in the worker: ``compute_type: float16`` on a CPU made CTranslate2 raise
``ValueError`` and sent a good file to ``manual_review/`` after a ``202``, and
``device: cuda`` on a host without a GPU did the same after three attempts
(issue 13).  CTranslate2 is the engine's backend and imports no torch; a child
process asks it, once (about 0.2 s).
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

from transcriber.domain.settings import COMPUTE_TYPES, TranscriptionSettings
from transcriber.errors import UnsupportedSettingError

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


# Asked in a child process: importing CTranslate2 costs the daemon ~35 MB it would
# keep for good (measured), for one question asked once.
_PROBE = """
import json, ctranslate2
found = {"cpu": sorted(ctranslate2.get_supported_compute_types("cpu"))}
try:
    if ctranslate2.get_cuda_device_count() > 0:
        found["cuda"] = sorted(ctranslate2.get_supported_compute_types("cuda"))
except RuntimeError:  # a driver too old for the runtime: no usable GPU
    pass
print(json.dumps(found))
"""


@functools.cache
def host_capabilities() -> HostCapabilities:
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60,
                               check=True)
        found: dict[str, list[str]] = json.loads(probe.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        # No engine installed, or it cannot load: nothing to refuse here, the worker reports it.
        log.warning("Cannot ask CTranslate2 what this host runs (%s); settings are not checked", exc)
        return HostCapabilities({device: frozenset(COMPUTE_TYPES) for device in ("cpu", "cuda")})
    return capabilities_from(found, _torch_is_cpu_only())


def capabilities_from(found: Mapping[str, list[str]], torch_is_cpu_only: bool) -> HostCapabilities:
    """What CTranslate2 reported, less a GPU that torch cannot use: the VAD and the
    aligner run on torch, and with a CPU build of it (the default image's) a file
    asked for on ``cuda`` would fail in the worker."""
    usable = {device: frozenset(types) | ALWAYS_SUPPORTED_COMPUTE_TYPES for device, types in found.items()
              if not (device == "cuda" and torch_is_cpu_only)}
    if "cuda" in found and "cuda" not in usable:
        log.info("A CUDA GPU is visible, but torch is a CPU build: device cuda is not offered")
    return HostCapabilities(usable)


def _torch_is_cpu_only() -> bool:
    try:
        return metadata.version("torch").endswith("+cpu")
    except metadata.PackageNotFoundError:
        return False
