"""POST /upload, GET /audio and GET /links through a real uvicorn (issue 17, points 1 and 6),
with the fake engine (tests/fake_engine.py: it says a file's name, and diarizes it into
two speakers)."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import result_of, tone_bytes, wait_for
from transcriber.api.routes.audio import link_key, signature

NAME = "hello there good morning.wav"


@pytest.fixture
def api(start_api):
    return start_api({"upload": {"max_bytes": 400_000}})


def leftovers(shared: Path) -> list[str]:
    """Temporary upload files anywhere in the folder: there must never be one after a reply."""
    return [p.name for p in shared.rglob(".upload-*")]


def upload(api, content: bytes, name: str = NAME, **fields):
    return api.client.post("/upload", files={"file": (name, content, "audio/wav")},
                           data={key: str(value).lower() if isinstance(value, bool) else str(value)
                                 for key, value in fields.items()})


def test_an_upload_is_transcribed_and_answered_as_post_transcribe(api) -> None:
    content = tone_bytes()
    response = upload(api, content, diarize=True, wait=20)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed" and body["filename"] == NAME
    assert [s["speaker"] for s in body["result"]["transcription"]["segments"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert body["upload"] == {"filename": NAME, "size_bytes": len(content),
                              "sha256": hashlib.sha256(content).hexdigest(), "stored": "new"}
    assert (api.shared / NAME).read_bytes() == content and not leftovers(api.shared)
    again = upload(api, content)  # the same file again: nothing new, the transcript at once
    assert again.status_code == 200 and again.json()["upload"]["stored"] == "same"
    assert again.json()["result"]["task_id"] == body["result"]["task_id"]


def test_without_wait_the_reply_is_the_queued_job(api) -> None:
    response = upload(api, tone_bytes(), name="звонок диспетчеру.wav", language="ru")
    assert response.status_code == 202, response.text
    assert response.json()["status"] in ("queued", "processing")
    assert response.json()["filename"] == "звонок диспетчеру.wav"
    assert response.json()["settings"]["language"] == "ru"
    result = wait_for(lambda: result_of(api.shared, "звонок диспетчеру.wav"), what="the result")
    assert result["settings"]["language"] == "ru"  # the upload's settings, not a watcher's defaults


def test_a_cyrillic_name_as_browsers_send_it_and_a_filename_field(api) -> None:
    boundary = "b0undary"
    content = tone_bytes()
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"звонок.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    response = api.client.post("/upload", content=body,
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 202, response.text
    assert response.json()["filename"] == "звонок.wav" and (api.shared / "звонок.wav").read_bytes() == content
    named = upload(api, tone_bytes(frequency=500), name="whatever.wav", filename="call 7.wav")
    assert named.status_code == 202 and (api.shared / "call 7.wav").exists()
    assert not (api.shared / "whatever.wav").exists()
    # A browser's FormData Blob is "blob", and its filename field may come after it.
    blob = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"blob\"\r\n\r\n"
            ).encode() + content + (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"filename\"\r\n"
                                    f"\r\nзапись.wav\r\n--{boundary}--\r\n").encode()
    response = api.client.post("/upload", content=blob,
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 202 and response.json()["filename"] == "запись.wav", response.text


def test_a_name_taken_in_another_unicode_form_is_the_same_name(api) -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "ёлка.wav")
    (api.shared / nfd).write_bytes(tone_bytes(frequency=700))
    refused = upload(api, tone_bytes(), name="ёлка.wav")  # NFC
    assert refused.status_code == 409 and refused.json()["error_code"] == "file_exists", refused.text
    assert [p.name for p in api.shared.glob("*.wav")] == [nfd] and not leftovers(api.shared)


def test_an_upload_never_follows_a_link_out_of_the_folder(start_api, tmp_path: Path) -> None:
    api = start_api({"watch": {"recursive": True}})
    outside = tmp_path / "outside"
    outside.mkdir()
    (api.shared / "team").symlink_to(outside)
    (api.shared / "call.wav").symlink_to(outside / "call.wav")  # a dangling link in the name's place
    for name in ("team/x.wav", "call.wav", "nosuchfolder/x.wav"):
        response = upload(api, tone_bytes(), name="a.wav", filename=name)
        assert response.status_code == 400 and response.json()["error_code"] == "invalid_filename", response.text
    assert not list(outside.iterdir()) and not leftovers(api.shared)


def test_a_taken_name_is_refused_renamed_or_overwritten(api) -> None:
    first, other = tone_bytes(), tone_bytes(frequency=880)
    assert upload(api, first, wait=20).status_code == 200
    refused = upload(api, other)
    assert refused.status_code == 409 and refused.json()["error_code"] == "file_exists", refused.text
    assert (api.shared / NAME).read_bytes() == first and not leftovers(api.shared)
    renamed = upload(api, other, rename=True, wait=20)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["filename"] == "hello there good morning (2).wav"
    assert renamed.json()["upload"]["stored"] == "renamed"
    assert (api.shared / "hello there good morning (2).wav").read_bytes() == other
    replaced = upload(api, other, overwrite=True, wait=20)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["upload"]["stored"] == "replaced" and (api.shared / NAME).read_bytes() == other
    assert replaced.json()["result"]["metadata"]["audio_file"]["size_bytes"] == len(other)
    both = upload(api, first, overwrite=True, rename=True)
    assert both.status_code == 422 and "exclude each other" in both.json()["message"]


@pytest.mark.parametrize(("name", "status", "code"), [
    ("notes.txt", 422, "unsupported_extension"),
    ("../../etc/passwd", 422, "unsupported_extension"),
    ("../../etc/passwd.wav", 400, "invalid_filename"),
    ("/etc/cron.d/x.wav", 400, "invalid_filename"),
    (".hidden.wav", 400, "invalid_filename"),
    ("a\x00b.wav", 400, "invalid_filename"),
    ("manual_review/x.wav", 400, "invalid_filename"),
])
def test_hostile_and_unsupported_names_write_nothing(api, tmp_path: Path, name: str, status: int, code: str) -> None:
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    # As the file's own name, and as the filename field (httpx, as browsers, sends a control
    # character in the part's name as %00: only the field can carry one).
    as_part = [] if "\x00" in name else [upload(api, tone_bytes(), name=name)]
    for response in [*as_part, upload(api, tone_bytes(), name="fine.wav", filename=name)]:
        assert (response.status_code, response.json()["error_code"]) == (status, code), response.text
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_bad_fields_and_bodies_are_refused_and_write_nothing(api) -> None:
    for fields, code in (({"language": "xx"}, "invalid_settings"), ({"min_speakers": "many"}, "invalid_settings"),
                         ({"colour": "red"}, "invalid_request"), ({"wait": "-1"}, "invalid_request")):
        response = upload(api, tone_bytes(), **fields)
        assert response.status_code == 422 and response.json()["error_code"] == code, (fields, response.text)
    no_file = api.client.post("/upload", files={"language": (None, "ru")})
    assert no_file.status_code == 422 and "part named 'file'" in no_file.json()["message"]
    not_multipart = api.client.post("/upload", json={"file": "x"})
    assert not_multipart.status_code == 400 and not_multipart.json()["error_code"] == "invalid_request"
    two_files = api.client.post("/upload", files=[("file", ("a.wav", b"RIFF")), ("file", ("b.wav", b"RIFF"))])
    assert two_files.status_code == 400 and "one file" in two_files.json()["message"]
    boundary = "x"
    bomb = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{n}\"\r\n\r\nv\r\n"
                   for n in range(5000)) + f"--{boundary}--\r\n"
    response = api.client.post("/upload", content=bomb.encode(),
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 400 and "more than 32 parts" in response.json()["message"]
    cut = f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF"
    response = api.client.post("/upload", content=cut.encode(),
                               headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 400 and "closing boundary" in response.json()["message"]
    assert not leftovers(api.shared) and not list(api.shared.glob("*.wav"))


def test_a_file_over_the_limit_is_refused_while_streaming(api) -> None:
    response = upload(api, tone_bytes(seconds=12.6))  # 403,244 bytes: just over the 400,000 of upload.max_bytes
    assert response.status_code == 413 and response.json()["error_code"] == "request_too_large", response.text
    assert "upload.max_bytes" in response.json()["message"]
    assert not leftovers(api.shared) and not (api.shared / NAME).exists()
    assert upload(api, tone_bytes(seconds=12.4)).status_code == 202  # 396,844: within it


def raw_request(port: int, head: str, body: bytes = b"", read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head.encode() + body)
        if not read:
            return b""
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def test_a_lying_content_length_and_a_client_that_goes_away_leave_nothing(api) -> None:
    port = api.daemon.config.api.port
    boundary = "x"
    start = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{NAME}\"\r\n\r\n"
             ).encode() + b"RIFF" + b"\0" * 1000
    huge = raw_request(port, f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n"
                             f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n", start)
    assert huge.startswith(b"HTTP/1.1 413") and b"request_too_large" in huge
    # Within the limit, then gone: half a body, and the connection closed.
    raw_request(port, f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n", start + b"\0" * 100_000,
                read=False)
    wait_for(lambda: not leftovers(api.shared), what="the abandoned upload removed")
    time.sleep(0.5)  # and nothing placed meanwhile
    assert not leftovers(api.shared) and not (api.shared / NAME).exists()


def test_the_token_applies(start_api) -> None:
    api = start_api({"api": {"token": "s3cret"}})
    refused = upload(api, tone_bytes())
    assert refused.status_code == 401 and not (api.shared / NAME).exists() and not leftovers(api.shared)
    accepted = api.client.post("/upload", files={"file": (NAME, tone_bytes())}, headers={"X-API-Key": "s3cret"})
    assert accepted.status_code == 202, accepted.text


# GET /audio and GET /links ------------------------------------------------------------------------

def test_audio_with_ranges(api) -> None:
    content = tone_bytes(seconds=1.0)
    (api.shared / NAME).write_bytes(content)
    whole = api.client.get(f"/audio/{NAME}")
    assert whole.status_code == 200 and whole.content == content
    assert whole.headers["content-type"] == "audio/wav" and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"].startswith("inline;")
    part = api.client.get(f"/audio/{NAME}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(content)}"
    tail = api.client.get(f"/audio/{NAME}", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == content[-10:]
    past = api.client.get(f"/audio/{NAME}", headers={"Range": f"bytes={len(content) + 10}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(content)}"
    head = api.client.head(f"/audio/{NAME}")
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(content)
    assert api.client.get("/audio/missing.wav").json()["error_code"] == "file_not_found"
    traversal = api.client.get("/audio/%2e%2e/x.wav")  # encoded: httpx would drop a plain ".."
    assert traversal.status_code == 400 and traversal.json()["error_code"] == "invalid_filename"


def test_signed_links_play_without_the_token_until_they_expire(start_api) -> None:
    api = start_api({"api": {"token": "s3cret"}}, headers={"X-API-Key": "s3cret"})
    content = tone_bytes()
    (api.shared / NAME).write_bytes(content)
    (api.shared / "other.wav").write_bytes(tone_bytes(frequency=300))
    assert api.client.get(f"/audio/{NAME}").content == content  # with the token
    anonymous = api.client.__class__(base_url=api.client.base_url, timeout=10)
    try:
        assert anonymous.get(f"/audio/{NAME}").status_code == 401
        assert anonymous.get(f"/links/{NAME}").status_code == 401
        link = api.client.get(f"/links/{NAME}", params={"expires_in": 600}).json()
        assert link["url"].startswith(str(api.client.base_url)) and 590 <= link["expires"] - time.time() <= 600
        played = anonymous.get(link["path"], headers={"Range": "bytes=0-9"})
        assert played.status_code == 206 and played.content == content[:10]
        forged = link["path"].replace("sig=", "sig=0")[:-1]
        assert anonymous.get(forged).json()["error_code"] == "invalid_link"
        other = link["path"].replace(NAME.replace(" ", "%20"), "other.wav")
        assert anonymous.get(other).status_code == 403  # a link names one file
        key = link_key(b"s3cret")
        past = int(time.time()) - 1
        stat = (api.shared / NAME).stat()
        expired = anonymous.get(f"/audio/{NAME}", params={"expires": past, "sig": signature(key, NAME, past, stat)})
        assert expired.status_code == 403 and "expired" in expired.json()["message"]
        assert anonymous.get(f"/audio/{NAME}", params={"expires": past, "sig": "ж" * 64}).status_code == 403
        (api.shared / NAME).write_bytes(tone_bytes(frequency=990))  # another recording under the name
        replaced = anonymous.get(link["path"])
        assert replaced.status_code == 403 and replaced.json()["error_code"] == "invalid_link"
    finally:
        anonymous.close()
    for bad in (0, 7 * 24 * 3600 + 1, "soon"):
        assert api.client.get(f"/links/{NAME}", params={"expires_in": bad}).status_code == 422
    assert api.client.get("/links/missing.wav").status_code == 404
