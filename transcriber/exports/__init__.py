"""Renderings of a ``.result`` document, one registry of them (docs/API.md, GET /result?format=).

Each export is a pure function of the result document (corrections and
fragments already applied by the caller) to its encoded body, in chunks, so
that a long transcript is streamed and never held twice.  The families live
in their own modules: ``text`` (txt, md), ``subtitles`` (srt, vtt),
``tables`` (tsv), ``document`` (docx); ``json`` is the document itself.
Used by ``GET /result?format=`` and for the files ``output.write_formats``
writes beside the ``.result`` (``call.mp3.srt``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from transcriber.domain import edits as corrections
from transcriber.domain.edits import Edits
from transcriber.domain.fragment import check_range, cut
from transcriber.domain.transcript import check_result
from transcriber.exports import document, subtitles, tables, text


@dataclass(frozen=True)
class Export:
    name: str  # "srt": the format's name in ?format= and write_formats, and the file's extension
    media_type: str
    render: Callable[[dict[str, Any]], Iterator[bytes]]  # the encoded body in chunks


def render_json(result: dict[str, Any]) -> Iterator[bytes]:
    """The result document itself, as the ``.result`` holds it (indent 2, UTF-8)."""
    pieces = json.JSONEncoder(ensure_ascii=False, indent=2).iterencode(result)
    return text.encoded(pieces)


EXPORTS: dict[str, Export] = {export.name: export for export in (
    Export("json", "application/json", render_json),
    Export("txt", "text/plain; charset=utf-8", text.render_txt),
    Export("srt", "application/x-subrip; charset=utf-8", subtitles.render_srt),
    Export("vtt", "text/vtt; charset=utf-8", subtitles.render_vtt),
    Export("tsv", "text/tab-separated-values; charset=utf-8", tables.render_tsv),
    Export("md", "text/markdown; charset=utf-8", text.render_md),
    Export("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
           document.render_docx),
)}

# What may be written beside a ``.result``: what ``output.write_formats`` accepts.
FILE_FORMATS: tuple[str, ...] = tuple(EXPORTS)


def corrected(fmt: str, edited: bool | None = None) -> bool:
    """Whether an export shows the corrections: as asked, else for every format but json."""
    return edited if edited is not None else fmt != "json"


def shown(result: dict[str, Any], edits: Edits, fmt: str, edited: bool | None = None, start: float | None = None,
          end: float | None = None, relative: bool = False) -> tuple[dict[str, Any], tuple[float, float] | None]:
    """What an export of ``result`` shows, and the fragment's bounds (None: the whole): the
    corrections applied (by default for every format but json), cut to ``start``–``end``
    seconds when either is given.  Raises RangeError for a bad range, and MalformedResult
    for a result it cannot render (checked here, before a response has begun: a stream
    that breaks halfway is a truncated file to the client)."""
    applied = corrected(fmt, edited) and not edits.empty
    whole = start is None and end is None
    if fmt != "json" or applied or not whole:
        check_result(result)
    if applied:
        result = corrections.apply(result, edits)
    if whole:
        return result, None
    bounds = check_range(start, end, result.get("duration_seconds"))
    return cut(result, *bounds, relative), bounds


def stream(result: dict[str, Any], fmt: str) -> Iterator[bytes]:
    """The body of ``result`` as ``fmt`` (a name of ``EXPORTS``; KeyError otherwise), in chunks."""
    return EXPORTS[fmt].render(result)


def render_bytes(result: dict[str, Any], fmt: str) -> bytes:
    """The whole body at once: for a file, or a test."""
    return b"".join(stream(result, fmt))
