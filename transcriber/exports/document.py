"""A Word document (docx): the header of the call, then the transcript by turns.

python-docx is imported inside :func:`render_docx`: the daemon's import path never
needs it.  The document is saved to a spooled temporary file (in memory while
small, on disk past ``SPOOL_BYTES``) and streamed from there: the XML tree is
gone by the time the body is sent.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from transcriber.exports.text import fact_lines, facts, speaker_lines, timecode, title, turns

CHUNK_BYTES = 64 * 1024
SPOOL_BYTES = 8 * 2**20
# What XML 1.0 cannot hold (control characters, lone surrogates): python-docx
# refuses a string with any, and a corrected text could bring one.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def render_docx(result: dict[str, Any]) -> Iterator[bytes]:
    """Built and saved before it returns, so that a failure is raised to the caller rather
    than in the middle of a response; the chunks are read as they are asked for."""
    import docx  # a few MB of lxml and templates, for this format only

    document = docx.Document()
    document.core_properties.title = _xml(title(result))
    document.add_heading(_xml(title(result)), level=0)
    for label, value in facts(result):
        _fact(document, label, value)
    speakers = speaker_lines(result)
    if speakers:
        document.add_paragraph().add_run("Speakers:").bold = True
        for line in speakers:
            document.add_paragraph(_xml(line), style="List Bullet")
    for label, value in fact_lines(result):
        _fact(document, label, value)
    document.add_heading("Transcript", level=1)
    for turn in turns(result):
        paragraph = document.add_paragraph()
        paragraph.add_run(f"[{timecode(turn.start)}] ")
        if turn.speaker:
            paragraph.add_run(_xml(turn.speaker)).bold = True
            paragraph.add_run(": ")
        paragraph.add_run(_xml(turn.text))
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by _chunks)
    try:
        document.save(body)
    except BaseException:
        body.close()
        raise
    body.seek(0)
    return _chunks(body)


def _chunks(body: IO[bytes]) -> Iterator[bytes]:
    with body:
        while chunk := body.read(CHUNK_BYTES):
            yield chunk


def _fact(document: Any, label: str, value: str) -> None:
    paragraph = document.add_paragraph()
    paragraph.add_run(f"{label}: ").bold = True
    paragraph.add_run(_xml(value))


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)
