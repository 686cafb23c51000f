from __future__ import annotations

import pytest

from transcriber.domain.settings import TranscriptionSettings
from transcriber.engine.capabilities import capabilities_from, host_capabilities
from transcriber.errors import UnsupportedSettingError

GPU_HOST = {"cpu": ["float32", "int8", "int8_float32"], "cuda": ["float16", "int8", "int8_float16"]}


def settings(device: str, compute_type: str) -> TranscriptionSettings:
    return TranscriptionSettings("base", "ru", 0.1, compute_type, device)


def test_a_gpu_host_runs_float16_on_cuda_only() -> None:
    host = capabilities_from(GPU_HOST, torch_is_cpu_only=False)
    host.check(settings("cuda", "float16"))
    with pytest.raises(UnsupportedSettingError) as refused:
        host.check(settings("cpu", "float16"))
    assert refused.value.code == "unsupported_compute_type" and "int8" in refused.value.supported


def test_a_gpu_is_not_offered_when_torch_is_a_cpu_build() -> None:
    host = capabilities_from(GPU_HOST, torch_is_cpu_only=True)
    with pytest.raises(UnsupportedSettingError) as refused:
        host.check(settings("cuda", "int8"))
    assert refused.value.code == "unsupported_device" and refused.value.supported == ("cpu",)


def test_this_host_runs_the_defaults() -> None:
    host_capabilities().check(settings("cpu", "int8"))
    host_capabilities().check(settings("cpu", "default"))
