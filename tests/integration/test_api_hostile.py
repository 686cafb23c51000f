"""Hostile input: never a 500, never a path outside the shared folder.

The tables and the schemathesis run are module-level so that
tests/reliability/test_hostile_api_load.py fires the same input at a daemon
under load.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.helpers import REPO, result_of, wait_for, write_tone

HOSTILE_NAMES = [
    "../outside.wav",
    "../../etc/passwd",
    "/etc/passwd",
    "/tmp/outside.wav",
    "sub/../../outside.wav",
    "a\\b.wav",
    "..\\outside.wav",
    "a\x00b.wav",
    "a\nb.wav",
    "a\rb.wav",
    "a\tb.wav",
    "a\x1bb.wav",
    "a\u202eb.wav",  # right-to-left override
    "\uff0e\uff0e\uff0foutside.wav",  # fullwidth "../"
    "\uff0e\uff0e/outside.wav",
    "..\u2215outside.wav",  # division slash
    ".hidden.wav",
    ".",
    "..",
    "",
    " ",
    "x" * 300 + ".wav",
    "я" * 130 + ".wav",  # 260 bytes in UTF-8
    "sub/inner.wav",
    "manual_review/x.wav",
    "notes.txt",
    "call.wav.result",
    "call.wav.in_progress",
    "%2e%2e%2foutside.wav",
]

BODY_ROUTES = [("POST", "/transcribe"), ("DELETE", "/transcribe")]
PATH_ROUTES = [("DELETE", "/transcribe/{}"), ("GET", "/status/{}"), ("GET", "/result/{}"), ("GET", "/edits/{}"),
               ("PUT", "/edits/{}"), ("GET", "/audio/{}"), ("GET", "/links/{}")]

# (raw body of POST /transcribe, status, error_code)
MALFORMED_BODIES = [
    (b"{bad json", 400, "invalid_json"),
    (b"", 422, "invalid_request"),
    (b"[]", 422, "invalid_request"),
    (b'"inner.wav"', 422, "invalid_request"),
    (b'{"filename": 5}', 422, "invalid_filename"),
    (b'{"filename": ["inner.wav"]}', 422, "invalid_filename"),
    (b'{"filename": null}', 422, "invalid_filename"),
    (b'{"filename": "inner.wav", "wait": "soon"}', 422, "invalid_request"),
    (b'{"filename": "inner.wav", "force": "maybe"}', 422, "invalid_request"),
    (b'{"filename": "inner.wav", "temperature": "hot"}', 422, "invalid_settings"),
    (b'{"filename": "inner.wav", "min_speakers": 0}', 422, "invalid_settings"),
    (b'{"filename": "inner.wav", "max_speakers": 21}', 422, "invalid_settings"),
    (b'{"filename": "inner.wav", "min_speakers": 3, "max_speakers": 2}', 422, "invalid_settings"),
    (b'{"filename": "inner.wav", "max_speakers": "two"}', 422, "invalid_settings"),
    (b'{"filename": "inner.wav", "diarize": "maybe"}', 422, "invalid_settings"),
    (b'\xff\xfe\x00garbage', 400, "invalid_json"),
]
OVERSIZED_BODY = b'{"filename": "' + b"a" * 70_000 + b'.wav"}'

FUZZ_SEED = 20261124
FUZZ_CHECKS = "not_a_server_error,response_schema_conformance"


def name_requests(name: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, url, httpx keyword arguments)`` for ``name`` on every route that takes a filename."""
    requests = [(method, path, {"json": {"filename": name}}) for method, path in BODY_ROUTES]
    requests += [(method, template.format(quote(name, safe="")), {}) for method, template in PATH_ROUTES]
    return requests


def run_schemathesis(
    base_url: str, cwd: Path, *, max_examples: int = 25, seed: int = FUZZ_SEED, max_time: float = 120,
    timeout: float = 400, extra: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """The schemathesis CLI against the live API's OpenAPI document (5xx and schema checks).

    ``--max-time`` is the run's length: fuzzing repeats until it is spent."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"{base_url}/openapi.json",
         "--checks", FUZZ_CHECKS, "--max-examples", str(max_examples), "--seed", str(seed),
         "--request-timeout", "10", "--max-time", f"{max_time:g}", "--warnings", "off", *extra],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, "NO_COLOR": "1"},
    )


def assert_fuzz_passed(completed: subprocess.CompletedProcess[str]) -> None:
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "passed" in completed.stdout.lower() or "0 failed" in completed.stdout.lower(), completed.stdout[-2000:]


def fuzz_cases(completed: subprocess.CompletedProcess[str]) -> int:
    """How many test cases (requests) schemathesis generated, from its summary line."""
    found = re.search(r"(\d+) generated", completed.stdout)
    return int(found.group(1)) if found else 0


@pytest.fixture
def api(start_api, tmp_path: Path):
    harness = start_api()
    write_tone(tmp_path / "outside.wav")  # a file next to the shared folder, which must survive
    write_tone(harness.shared / "inner.wav")
    return harness


def _outside_untouched(tmp_path: Path) -> None:
    assert (tmp_path / "outside.wav").exists()
    assert not (tmp_path / "outside.wav.in_progress").exists()
    assert not (tmp_path / "outside.wav.result").exists()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_on_every_route(api, tmp_path: Path, name: str) -> None:
    for method, url, kwargs in name_requests(name):
        response = api.client.request(method, url, **kwargs)
        assert_refused(response, name)
    _outside_untouched(tmp_path)
    assert os.path.exists("/etc/passwd")


def assert_refused(response: httpx.Response, name: str) -> None:
    assert response.status_code in (400, 404, 422), (name, response.status_code, response.text)
    body = response.json()
    assert set(body) >= {"status", "error_code", "message", "filename"}, body
    if response.status_code == 400:
        assert body["error_code"] == "invalid_filename"


def test_a_symlink_out_of_the_folder_is_refused_and_its_target_survives(api, tmp_path: Path) -> None:
    (api.shared / "link.wav").symlink_to(tmp_path / "outside.wav")
    for method, template in PATH_ROUTES:
        response = api.client.request(method, template.format("link.wav"))
        assert response.status_code == 400 and response.json()["error_code"] == "invalid_filename"
    response = api.client.post("/transcribe", json={"filename": "link.wav"})
    assert response.status_code == 400
    _outside_untouched(tmp_path)


def test_an_nfd_name_on_disk_is_found_by_its_nfc_twin(api) -> None:
    nfc = "йога встреча.wav"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    write_tone(api.shared / nfd)
    result = wait_for(lambda: result_of(api.shared, nfd), what="the NFD file's result")
    assert result["transcription"]["text"]
    assert api.client.get(f"/status/{quote(nfc)}").json()["status"] == "completed"
    assert api.client.get(f"/result/{quote(nfc)}").status_code == 200
    assert api.client.post("/transcribe", json={"filename": nfc}).status_code == 200


@pytest.mark.parametrize(("content", "status", "code"), MALFORMED_BODIES)
def test_malformed_bodies(api, content: bytes, status: int, code: str) -> None:
    response = api.client.post("/transcribe", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code


def test_a_body_over_the_limit_is_413(api) -> None:
    response = api.client.post("/transcribe", content=OVERSIZED_BODY, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error_code"] == "request_too_large"

    def chunks():  # no Content-Length: streamed
        yield b'{"filename": "'
        for _ in range(20):
            yield b"a" * 5000
        yield b'.wav"}'

    streamed = api.client.post("/transcribe", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


def test_schema_fuzzing_finds_no_server_error_and_no_schema_violation(
        start_api, tmp_path: Path, database_url: str) -> None:
    # With the mirror on, so /tasks and /search are fuzzed against a real PostgreSQL.
    api = start_api({"api": {"max_wait_seconds": 0.5, "file_wait_attempts": 1}, "database": {"url": database_url}})
    write_tone(api.shared / "fuzz.wav")
    wait_for(lambda: api.client.get("/health").json()["database"] == "ok", what="the mirror")
    completed = run_schemathesis(f"http://127.0.0.1:{api.daemon.config.api.port}", tmp_path)
    assert_fuzz_passed(completed)
    assert api.daemon.watcher.is_alive()
    assert REPO.exists()
