"""multipart/form-data read as it arrives (POST /upload): the file part goes to disk in
pieces, the other parts are small text fields.

python-multipart's streaming parser is fed each chunk of the body; the file's data it
hands back is written off the event loop, a chunk at a time, so an upload is never
held in memory and never stalls the other requests.  Bounded: at most ``MAX_PARTS``
parts, ``MAX_FIELD_BYTES`` a field, one file.  Whatever goes wrong (a malformed body,
a limit, the client going away, the folder refusing the write) the file begun is
removed before the error goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from transcriber.api.service import ApiError
from transcriber.errors import ErrorCode
from transcriber.folder.intake import Incoming

MAX_PARTS = 32
MAX_FIELD_BYTES = 4096
FILE_FIELD = "file"


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None  # the file part's own name, as the client sent it
    file: Incoming | None = None


def bad_form(message: str) -> ApiError:
    return ApiError(400, ErrorCode.INVALID_REQUEST, message)


async def read_form(request: Request, open_file: Callable[[str, dict[str, str]], Incoming],
                    max_file_bytes: int) -> Form:
    """The fields and the file of a multipart body; ``open_file(filename, fields so far)`` is
    called when the file part begins (and may refuse it, before a byte of it is written).
    A file past ``max_file_bytes`` is a 413 as soon as its data says so."""
    kind, options = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise bad_form("send multipart/form-data, the audio in a part named 'file'")
    reader = _Reader(open_file, max_file_bytes)
    parser = MultipartParser(options[b"boundary"], callbacks=reader.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if reader.pending:
                await run_in_threadpool(reader.flush)
        parser.finalize()
        if not reader.ended:
            raise bad_form("the multipart body ends before its closing boundary")
    except FormParserError as exc:
        reader.discard()
        raise bad_form(f"a malformed multipart body: {exc}") from exc
    except BaseException:
        reader.discard()
        raise
    return reader.form


class _Reader:
    """The parser's callbacks: one part at a time, its headers, then its data."""

    def __init__(self, open_file: Callable[[str, dict[str, str]], Incoming], max_file_bytes: int) -> None:
        self.open_file, self.max_file_bytes = open_file, max_file_bytes
        self._file_bytes = 0
        self.form = Form()
        self.pending: list[bytes] = []  # the file's data parsed and not yet written
        self.ended = False
        self._parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._header = (b"", b"")
        self._name: str | None = None
        self._value = bytearray()
        self._in_file = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._part_end, "on_end": self._end}

    def flush(self) -> None:
        data, self.pending = b"".join(self.pending), []
        assert self.form.file is not None
        self.form.file.write(data)

    def discard(self) -> None:
        if self.form.file is not None:
            self.form.file.discard()

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise bad_form(f"more than {MAX_PARTS} parts")
        self._headers, self._name, self._value, self._in_file = {}, None, bytearray(), False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0] + data[start:end], self._header[1])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header = (self._header[0], self._header[1] + data[start:end])

    def _header_end(self) -> None:
        name, value = self._header
        self._headers[name.strip().lower()] = value.strip()
        self._header = (b"", b"")

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        kind, options = parse_options_header(disposition)
        if kind != b"form-data" or b"name" not in options:
            raise bad_form("every part needs Content-Disposition: form-data; name=…")
        self._name = _text(options[b"name"], "a part's name")
        if b"filename" not in options:
            return
        # Browsers send the name as raw UTF-8 (RFC 7578 leaves out filename*, as python-multipart does).
        filename = _text(options[b"filename"], "the file name")
        if self._name != FILE_FIELD or self.form.file is not None:
            raise bad_form(f"one file, in the part named {FILE_FIELD!r}")
        self.form.filename = filename
        self.form.file = self.open_file(filename, dict(self.form.fields))
        self._in_file = True

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                raise ApiError(413, ErrorCode.REQUEST_TOO_LARGE,
                               f"the file is over {self.max_file_bytes} bytes (upload.max_bytes)")
            self.pending.append(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise bad_form(f"the field {self._name!r} is over {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._in_file or self._name is None:
            return
        if self._name in self.form.fields or self._name == FILE_FIELD:
            raise bad_form(f"the field {self._name!r} is given twice, or is not the file")
        self.form.fields[self._name] = _text(bytes(self._value), f"the field {self._name!r}")

    def _end(self) -> None:
        self.ended = True


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_form(f"{what} is not UTF-8") from exc
