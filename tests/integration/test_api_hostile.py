"""Hostile input: never a 500, never a path outside the shared folder."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import quote

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
PATH_ROUTES = [("DELETE", "/transcribe/{}"), ("GET", "/status/{}"), ("GET", "/result/{}")]


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
    for method, path in BODY_ROUTES:
        response = api.client.request(method, path, json={"filename": name})
        _assert_refused(response, name)
    for method, template in PATH_ROUTES:
        response = api.client.request(method, template.format(quote(name, safe="")))
        _assert_refused(response, name)
    _outside_untouched(tmp_path)
    assert os.path.exists("/etc/passwd")


def _assert_refused(response, name: str) -> None:
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


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
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
        (b'\xff\xfe\x00garbage', 400, "invalid_json"),
    ],
)
def test_malformed_bodies(api, content: bytes, status: int, code: str) -> None:
    response = api.client.post("/transcribe", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code


def test_a_body_over_the_limit_is_413(api) -> None:
    big = b'{"filename": "' + b"a" * 70_000 + b'.wav"}'
    response = api.client.post("/transcribe", content=big, headers={"Content-Type": "application/json"})
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
    url = f"http://127.0.0.1:{api.daemon.config.api.port}/openapi.json"
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", url,
         "--checks", "not_a_server_error,response_schema_conformance",
         "--max-examples", "25", "--seed", "20261124", "--request-timeout", "10", "--max-time", "120",
         "--warnings", "off"],
        capture_output=True, text=True, timeout=400, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "passed" in completed.stdout.lower() or "0 failed" in completed.stdout.lower(), completed.stdout[-2000:]
    assert api.daemon.watcher.is_alive()
    assert REPO.exists()
