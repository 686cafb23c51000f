"""A Word document (docx): the header of the call, then the transcript by turns.

The header (title, facts, speakers) is built with python-docx, imported inside
:func:`render_docx` so that the daemon's import path never needs it.  The turns
are not: an hour's thousand paragraphs as an lxml tree cost some forty times the
file.  The package python-docx saved is copied part by part into a new zip, and
``word/document.xml`` is written through the zip's compressor a batch of turn
paragraphs at a time, each paragraph the XML python-docx itself would write
(``[hh:mm:ss]``, the speaker's name in bold, the text).  The zip goes to a spooled
temporary file (in memory while small, on disk past ``SPOOL_BYTES``) and is
streamed from there: what is held is the compressed file, never its XML.
"""

from __future__ import annotations

import copy
import io
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO, Any
from xml.sax.saxutils import escape

from transcriber.exports.text import (
    CHUNK_BYTES,
    Turn,
    encoded,
    fact_lines,
    facts,
    speaker_lines,
    timecode,
    title,
    turns,
)

SPOOL_BYTES = 8 * 2**20
DOCUMENT_PART = "word/document.xml"
# A tab or line break in a turn's run (a name edited into the .result by hand) is a
# space: written by hand it would stay raw, not python-docx's <w:tab/> or <w:br/>.
_BLANKS = str.maketrans("\t\r\n", "   ")
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
    header = io.BytesIO()
    document.save(header)
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by _chunks)
    try:
        with zipfile.ZipFile(header) as template:
            _package(template, body, turns(result))
    except BaseException:
        body.close()
        raise
    body.seek(0)
    return _chunks(body)


def _package(template: zipfile.ZipFile, out: IO[bytes], paragraphs: Iterable[Turn]) -> None:
    """``template``'s parts, in its order, into ``out``; the turns appended to the body of
    ``word/document.xml``, before its closing section properties."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for item in template.infolist():
            if item.filename != DOCUMENT_PART:
                package.writestr(copy.copy(item), template.read(item))
                continue
            xml = template.read(item)
            end = xml.rindex(b"<w:sectPr")  # the body's last child: what follows the paragraphs
            with package.open(DOCUMENT_PART, "w") as part:
                part.write(xml[:end])
                for chunk in encoded(map(_paragraph, paragraphs)):
                    part.write(chunk)
                part.write(xml[end:])


def _paragraph(turn: Turn) -> str:
    """``[hh:mm:ss] Name: text`` as python-docx's ``add_paragraph().add_run()`` writes it."""
    runs = [_run(f"[{timecode(turn.start)}] ")]
    if turn.speaker:
        runs += [_run(turn.speaker, bold=True), _run(": ")]
    runs.append(_run(turn.text))
    return f"<w:p>{''.join(runs)}</w:p>"


def _run(text: str, bold: bool = False) -> str:
    text = _xml(text).translate(_BLANKS)
    space = ' xml:space="preserve"' if text != text.strip() else ""
    style = "<w:rPr><w:b/></w:rPr>" if bold else ""
    return f"<w:r>{style}<w:t{space}>{escape(text)}</w:t></w:r>"


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
