"""Scenario 10: hostile input and schema fuzzing against a daemon that is busy.

The promise: nothing a hostile or careless client sends produces a 5xx or a
response outside the documented schema, or touches anything outside the
shared folder -- not only on an idle daemon (tests/integration/test_api_hostile.py)
but while files stream in (some written slowly, some slow to transcribe),
others are deleted or re-requested with new settings through the API, and
several clients fire the hostile table at once beside a schemathesis run.
And the load itself is unharmed: every file dropped during the run that no
client deleted or re-requested is transcribed exactly once, with the settings
last accepted for it, and the daemon ends healthy and idle.

schemathesis learns real filenames from responses (GET /tasks lists them)
and may then delete or re-request those files -- legitimate client actions,
and welcome churn.  Its requests and answers are recorded (a HAR file), so the
strict promises (exactly one completion, the settings asked for) are checked
on every file it did not change, and the files it changed must still end
settled: completed, or gone without a trace.

The hostile table and the schemathesis run are imported from the idle test,
not copied.  The fuzz run length and the seed come from the environment:

    HOSTILE_LOAD_FUZZ_SECONDS   schemathesis --max-time (default 40)
    HOSTILE_LOAD_FUZZ_EXAMPLES  schemathesis --max-examples (default 25)
    HOSTILE_LOAD_SEED           seed of schemathesis and of the load (default FUZZ_SEED)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from tests.helpers import result_of, wait_for, write_tone
from tests.integration.test_api_hostile import (
    FUZZ_SEED,
    HOSTILE_NAMES,
    MALFORMED_BODIES,
    OVERSIZED_BODY,
    assert_fuzz_passed,
    assert_refused,
    fuzz_cases,
    name_requests,
    run_schemathesis,
)
from transcriber.api.schemas import (
    CompletedResponse,
    DeletedResponse,
    ErrorResponse,
    HealthResponse,
    QueuedResponse,
    StatusResponse,
)
from transcriber.scheduler.events import JobEvent

FUZZ_SECONDS = float(os.environ.get("HOSTILE_LOAD_FUZZ_SECONDS", "40"))
FUZZ_EXAMPLES = int(os.environ.get("HOSTILE_LOAD_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("HOSTILE_LOAD_SEED", str(FUZZ_SEED)))

HOSTILE_CLIENTS = 3
MAX_DROPS = 60
DROP_INTERVAL_SECONDS = 0.4
CHURN_INTERVAL_SECONDS = 1.0
DEFAULT_LANGUAGE = "ru"  # whisperx.language in the test config
JSON = {"Content-Type": "application/json"}


@dataclass
class Recorder:
    """What the background threads saw; they never assert, the test does at the end."""

    failures: list[str] = field(default_factory=list)
    hostile_requests: int = 0
    other_requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    relanguaged: dict[str, str] = field(default_factory=dict)  # filename -> language its result must have
    churned: list[str] = field(default_factory=list)  # churn files that must complete (joined or re-set)
    completions: Counter[str] = field(default_factory=Counter)
    quarantined: list[str] = field(default_factory=list)
    vanished: set[str] = field(default_factory=set)  # our files another client deleted (a 404 we did not cause)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, what: str) -> None:
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(what)

    def saw(self, response: httpx.Response, hostile: bool) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            if hostile:
                self.hostile_requests += 1
            else:
                self.other_requests += 1
        if response.status_code >= 500:
            self.fail(f"{response.request.method} {response.request.url} -> {response.status_code}: "
                      f"{response.text[:300]}")

    def on_event(self, event: JobEvent) -> None:
        """A store listener: count completions per file (exactly once is the promise)."""
        if event.job is None:
            return
        if event.event == "completed":
            with self.lock:
                self.completions[event.job.filename] += 1
        elif event.event == "quarantined":
            with self.lock:
                self.quarantined.append(event.job.filename)


def checked(recorder: Recorder, what: str, check: Callable[[], None]) -> None:
    try:
        check()
    except AssertionError as exc:
        recorder.fail(f"{what}: {exc}")
    except (ValueError, KeyError) as exc:  # a body that is not the documented JSON
        recorder.fail(f"{what}: {type(exc).__name__}: {exc}")


def fingerprint(root: Path, skip: set[str]) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root`` (but the top-level names in ``skip``): kind, size, mtime, content hash."""
    entries: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(root):
        relative_folder = Path(folder).relative_to(root)
        if relative_folder == Path("."):
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        for name in [*dirs, *files]:
            path = Path(folder) / name
            stat = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else ""
            link = os.readlink(path) if path.is_symlink() else ""
            entries[str(relative_folder / name)] = (stat.st_mode, stat.st_size, stat.st_mtime_ns, digest, link)
    return entries


# -- the load ------------------------------------------------------------------


def drop_files(shared: Path, tone: bytes, recorder: Recorder, stop: threading.Event, rng: random.Random) -> None:
    """New audio every DROP_INTERVAL_SECONDS: most renamed into place, some written slowly in
    chunks (the stability window must wait for them), some slow to transcribe, some non-ASCII."""
    for number in range(MAX_DROPS):
        if stop.is_set():
            return
        stem = f"звонок {number:03d}" if number % 5 == 2 else f"load-{number:03d}"
        name = f"slow--{stem}.wav" if number % 7 == 3 else f"{stem}.wav"
        if number % 4 == 1:
            with open(shared / name, "wb") as handle:  # one open: inotify sees a single close at the end
                for start in range(0, len(tone), len(tone) // 5 + 1):
                    handle.write(tone[start:start + len(tone) // 5 + 1])
                    handle.flush()
                    time.sleep(0.1)
        else:
            part = shared / f"{name}.part"
            part.write_bytes(tone)
            os.replace(part, shared / name)
        with recorder.lock:
            recorder.dropped.append(name)
        stop.wait(DROP_INTERVAL_SECONDS * rng.uniform(0.5, 1.5))


def churn(client: httpx.Client, shared: Path, tone: bytes, recorder: Recorder, stop: threading.Event) -> None:
    """Now and then a file that is in flight gets deleted (body or path), re-requested with
    other settings (which interrupts and re-queues it), or re-requested with the same settings."""
    actions = ["delete_body", "settings", "join", "delete_path"]
    number = 0
    while not stop.wait(CHURN_INTERVAL_SECONDS):
        action = actions[number % len(actions)]
        name = f"slow--churn-{number:03d}.wav"
        number += 1
        part = shared / f"{name}.part"
        part.write_bytes(tone)
        os.replace(part, shared / name)
        with recorder.lock:
            recorder.churned.append(name)
        if not _wait_until_active(client, name, recorder, stop):
            continue
        if action.startswith("delete"):
            if action == "delete_body":
                response = client.request("DELETE", "/transcribe", json={"filename": name})
            else:
                response = client.delete(f"/transcribe/{quote(name)}")
            recorder.saw(response, hostile=False)
            if not _vanished(recorder, name, response):
                checked(recorder, f"DELETE {name}", lambda r=response: _expect(r, 200, DeletedResponse))
                with recorder.lock:
                    recorder.deleted.append(name)
                    recorder.churned.remove(name)
            continue
        body = {"filename": name, "language": "de"} if action == "settings" else {"filename": name}
        response = client.post("/transcribe", json=body)
        recorder.saw(response, hostile=False)
        if _vanished(recorder, name, response):
            continue
        if response.status_code == 200:  # it finished in between: the result stands
            checked(recorder, f"POST {name}", lambda r=response: _expect(r, 200, CompletedResponse))
        else:
            checked(recorder, f"POST {name}", lambda r=response: _expect(r, 202, QueuedResponse))
        if action == "settings" and response.status_code == 202:
            with recorder.lock:
                recorder.relanguaged[name] = "de"


def _wait_until_active(client: httpx.Client, name: str, recorder: Recorder, stop: threading.Event) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stop.is_set():
        response = client.get(f"/status/{quote(name)}")
        recorder.saw(response, hostile=False)
        if _vanished(recorder, name, response):
            return False
        if response.status_code == 200 and response.json()["status"] in ("queued", "processing"):
            return True
        time.sleep(0.05)
    if not stop.is_set():
        recorder.fail(f"{name} never became queued or processing")
    return False


def _vanished(recorder: Recorder, name: str, response: httpx.Response) -> bool:
    """A 404 for a file we dropped and did not delete: the fuzzer deleted it (checked at the end)."""
    if response.status_code != 404:
        return False
    checked(recorder, f"404 for {name}", lambda: _expect_error(response, 404, "file_not_found"))
    with recorder.lock:
        recorder.vanished.add(name)
    return True


def poll_status(client: httpx.Client, recorder: Recorder, stop: threading.Event, rng: random.Random) -> None:
    """What a dashboard does: status of recent files and health, checked against the schema."""
    while not stop.wait(0.1):
        with recorder.lock:
            recent = recorder.dropped[-8:]
        if recent:
            name = rng.choice(recent)
            response = client.get(f"/status/{quote(name)}")
            recorder.saw(response, hostile=False)
            if _vanished(recorder, name, response):
                continue

            def status_ok(r: httpx.Response = response, n: str = name) -> None:
                _expect(r, 200, StatusResponse)
                assert r.json()["status"] in ("pending", "queued", "processing", "completed"), (n, r.text)

            checked(recorder, f"GET /status/{name}", status_ok)
        response = client.get("/health")
        recorder.saw(response, hostile=False)
        checked(recorder, "GET /health", lambda r=response: _expect(r, 200, HealthResponse))


def fire_hostile_table(client: httpx.Client, recorder: Recorder, stop: threading.Event, rng: random.Random) -> None:
    """The idle test's table, shuffled, over and over, until told to stop."""
    requests: list[tuple[str, Callable[[], httpx.Response], Callable[[httpx.Response], None]]] = []
    for name in [*HOSTILE_NAMES, "link.wav"]:
        for method, url, kwargs in name_requests(name):
            check = _refused_as_link if name == "link.wav" else (lambda r, n=name: assert_refused(r, n))
            requests.append((f"{method} {url!r}", lambda m=method, u=url, k=kwargs: client.request(m, u, **k), check))
    for content, status, code in MALFORMED_BODIES:
        requests.append((f"POST /transcribe {content!r}",
                         lambda c=content: client.post("/transcribe", content=c, headers=JSON),
                         lambda r, s=status, c=code: _expect_error(r, s, c)))
    requests.append(("POST /transcribe (oversized)",
                     lambda: client.post("/transcribe", content=OVERSIZED_BODY, headers=JSON),
                     lambda r: _expect_error(r, 413, "request_too_large")))
    while not stop.is_set():
        rng.shuffle(requests)
        for what, send, check in requests:
            if stop.is_set():
                return
            try:
                response = send()
            except httpx.HTTPError as exc:
                recorder.fail(f"{what}: {type(exc).__name__}: {exc}")
                continue
            recorder.saw(response, hostile=True)
            checked(recorder, what, lambda c=check, r=response: c(r))


def _refused_as_link(response: httpx.Response) -> None:
    _expect_error(response, 400, "invalid_filename")


def _expect(response: httpx.Response, status: int, model: type[Any]) -> None:
    assert response.status_code == status, (status, response.status_code, response.text[:300])
    model.model_validate(response.json())


def _expect_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (status, response.status_code, response.text[:300])
    assert ErrorResponse.model_validate(response.json()).error_code == code, response.text[:300]


def touched_by_fuzzer(har: Path, names: list[str]) -> tuple[set[str], int]:
    """Which of ``names`` schemathesis changed (a DELETE answered 200, a POST answered 202: a
    job queued, joined or restarted), and how many requests it sent.  A refused request or a
    POST answered with the finished result changes nothing, so it leaves the strict checks on."""
    entries = json.loads(har.read_text(encoding="utf-8"))["log"]["entries"]
    blobs = []
    for entry in entries:
        request, status = entry["request"], entry["response"]["status"]
        if (request["method"], status) not in (("DELETE", 200), ("POST", 202)):
            continue
        text = (request.get("postData") or {}).get("text", "")
        with contextlib.suppress(ValueError):  # as the server read it: \u escapes decoded
            text = json.dumps(json.loads(text), ensure_ascii=False)
        blobs.append(unquote(request["url"]) + "\n" + text)
    return {name for name in names if any(name in blob for blob in blobs)}, len(entries)


# -- the test ------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_input_under_load_breaks_nothing(start_api, tmp_path: Path, database_url: str) -> None:
    api = start_api({
        "api": {"max_wait_seconds": 0.5, "file_wait_attempts": 1},
        "database": {"url": database_url},
        "processing": {"max_concurrent_tasks": 2},
        "watch": {"stability_seconds": 1.0},
        "logging": {"level": "INFO"},
    })
    shared = api.shared
    base_url = f"http://127.0.0.1:{api.daemon.config.api.port}"
    recorder = Recorder()
    api.daemon.store.add_listener(recorder.on_event)
    print(f"hostile API load: seed {SEED}, fuzz {FUZZ_SECONDS:g} s x {FUZZ_EXAMPLES} examples")

    # What must survive untouched: a file and a folder beside shared/ (the hostile table's
    # "../outside.wav" names exactly this file), and a link from inside shared/ to outside.
    write_tone(tmp_path / "outside.wav")
    write_tone(tmp_path / "outside" / "keep.wav")
    (tmp_path / "outside" / "notes.txt").write_text("do not touch", encoding="utf-8")
    (shared / "link.wav").symlink_to(tmp_path / "outside.wav")
    tone = write_tone(tmp_path / "staging" / "tone.wav", seconds=0.3).read_bytes()
    (tmp_path / "fuzz").mkdir()
    har = tmp_path / "fuzz" / "requests.har"
    before = fingerprint(tmp_path, skip={"shared", "fuzz"})
    wait_for(lambda: api.client.get("/health").json()["database"] == "ok", timeout=60, what="the mirror")

    stop = threading.Event()
    rng = random.Random(SEED)
    clients = [httpx.Client(base_url=base_url, timeout=60) for _ in range(HOSTILE_CLIENTS + 2)]
    threads = [
        threading.Thread(target=drop_files, args=(shared, tone, recorder, stop, random.Random(rng.random()))),
        threading.Thread(target=churn, args=(clients[0], shared, tone, recorder, stop)),
        threading.Thread(target=poll_status, args=(clients[1], recorder, stop, random.Random(rng.random()))),
        *[threading.Thread(target=fire_hostile_table, args=(client, recorder, stop, random.Random(rng.random())))
          for client in clients[2:]],
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        fuzz = run_schemathesis(base_url, tmp_path / "fuzz", max_examples=FUZZ_EXAMPLES, seed=SEED,
                                max_time=FUZZ_SECONDS, extra=["--report", "har", "--report-har-path", str(har)])
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        for client in clients:
            client.close()
    loaded_seconds = time.monotonic() - started
    ours = [*recorder.dropped, *recorder.churned]
    touched, fuzz_requests = touched_by_fuzzer(har, [*ours, *recorder.deleted])
    print(f"hostile requests: {recorder.hostile_requests} from {HOSTILE_CLIENTS} clients + {fuzz_requests} from "
          f"schemathesis ({fuzz_cases(fuzz)} cases); other requests: {recorder.other_requests}; "
          f"files dropped: {len(recorder.dropped)}, churned: {len(recorder.churned) + len(recorder.deleted)} "
          f"({len(recorder.deleted)} deleted), changed by the fuzzer: {len(touched)}; "
          f"{loaded_seconds:.0f} s under load; responses by status: {dict(sorted(recorder.statuses.items()))}")

    assert not any(thread.is_alive() for thread in threads)
    assert_fuzz_passed(fuzz)
    assert not recorder.failures, "\n".join(recorder.failures)
    assert not [code for code in recorder.statuses if code >= 500]
    assert recorder.hostile_requests > 0 and fuzz_requests > 0 and len(recorder.dropped) > 5
    assert recorder.vanished <= touched, "files vanished that no client deleted: " + repr(recorder.vanished - touched)

    # Every file no client interfered with completes exactly once, with the settings asked for;
    # those the fuzzer touched end settled too: completed, or gone without a trace.
    untouched = [name for name in ours if name not in touched]

    def settled(name: str) -> bool:
        if (shared / f"{name}.in_progress").exists():
            return False
        if name in untouched:
            return (shared / f"{name}.result").exists()
        return (shared / f"{name}.result").exists() or not (shared / name).exists()

    wait_for(lambda: all(settled(n) for n in ours), timeout=180, interval=0.2, what="every dropped file settled")
    for name in untouched:
        result = result_of(shared, name)
        assert result is not None and result["transcription"]["text"] == name.rsplit(".", 1)[0], (name, result)
        assert result["settings"]["language"] == recorder.relanguaged.get(name, DEFAULT_LANGUAGE), (name, result)
    assert {n: c for n, c in recorder.completions.items() if n in untouched and c != 1} == {}
    assert not set(untouched) - set(recorder.completions)
    assert not set(ours) & set(recorder.quarantined)
    assert not list((shared / "manual_review").iterdir())
    for name in touched & set(ours):
        if not (shared / f"{name}.result").exists():
            assert not [p.name for p in shared.glob(f"{name}*")], name

    # Deleted files are gone for good: no late result or sidecar brings them back.
    for name in recorder.deleted:
        assert not [p.name for p in [*shared.glob(f"{name}*"), *(shared / "manual_review").glob(f"{name}*")]]

    # Nothing outside the shared folder was touched; the daemon is still healthy.
    assert fingerprint(tmp_path, skip={"shared", "fuzz"}) == before
    assert not list(tmp_path.glob("*.result")) and not list(tmp_path.glob("*.in_progress"))
    health = api.client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy", health.text
    assert all(worker["state"] != "stopped" for worker in health.json()["worker"]), health.text
    assert api.daemon.watcher.is_alive()
    wait_for(lambda: not api.daemon.store.active() and len(api.daemon.queue) == 0, what="an idle daemon")
