"""Every configuration key is documented in docs/CONFIGURATION.md."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from transcriber.config import Config
from transcriber.errors import JOB_ERROR_CODES, NOT_SENT, ErrorCode

DOCS = Path(__file__).resolve().parents[2] / "docs"


def config_keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += config_keys(annotation, name)
        else:
            keys.append((prefix, name))
    return keys


def documented_sections() -> dict[str, str]:
    """Section name ("" for the top level) -> its text, from the ``### `name` `` headings."""
    sections = {}
    for part in (DOCS / "CONFIGURATION.md").read_text().split("\n### ")[1:]:
        heading, _, body = part.partition("\n")
        sections[heading.split("`")[1] if "`" in heading else ""] = body
    return sections


def test_every_config_key_is_documented_in_its_section() -> None:
    sections = documented_sections()
    for section, key in config_keys(Config):
        assert f"| `{key}` |" in sections[section], f"{section}.{key} is not documented"


def test_every_error_code_is_explained() -> None:
    text = (DOCS / "TROUBLESHOOTING.md").read_text()
    for code in ErrorCode:
        if code not in NOT_SENT:
            assert f"`{code}`" in text, code


def test_every_api_error_code_is_documented() -> None:
    text = (DOCS / "API.md").read_text()
    for code in ErrorCode:
        if code not in NOT_SENT and code not in JOB_ERROR_CODES:
            assert f"`{code}`" in text, code


def test_error_codes_are_named_by_the_enum_not_spelled_out() -> None:
    """A code written as a string literal in an error would escape the checks above."""
    import re

    for path in (DOCS.parent / "transcriber").rglob("*.py"):
        source = path.read_text()
        spelled = re.findall(r'(?:ApiError\(\s*\d+,|error_response\([^,]+,)\s*"([a-z_]+)"', source)
        spelled += re.findall(r'^\s*code = "([a-z_]+)"', source, re.M)
        assert not spelled, (path, spelled)


def test_every_suggestion_is_the_troubleshooting_advice_word_for_word() -> None:
    """Error bodies carry ``suggestion``; TROUBLESHOOTING.md gives the same advice in its code's row."""
    from transcriber.errors import SUGGESTIONS

    rows = {line.split("|")[1].strip().strip("`"): line
            for line in (DOCS / "TROUBLESHOOTING.md").read_text().splitlines() if line.startswith("| `")}
    rows.update({code.strip("` "): line for line in list(rows.values())
                 for code in line.split("|")[1].split(",")})  # a row of several codes: `not_found`, `method_…`
    for code, suggestion in SUGGESTIONS.items():
        assert code in rows, f"{code} has a suggestion but no row in TROUBLESHOOTING.md"
        assert f"| {suggestion} |" in rows[code], f"{code}: the suggestion differs from TROUBLESHOOTING.md"
    for code in ErrorCode:
        assert code in SUGGESTIONS or code in NOT_SENT, f"{code} has no suggestion"


def test_every_test_named_in_reliability_md_exists() -> None:
    """docs/RELIABILITY.md cites a test for each promise; a renamed test must not leave it citing nothing."""
    import re

    tests = DOCS.parent / "tests"
    text = (DOCS / "RELIABILITY.md").read_text()
    cited = re.findall(r"`(test_\w+\.py)((?:::test_\w+)?)`", text)
    cited += re.findall(r"`(test_\w+\.py)(::test_\w+)`, `::(test_\w+)`", text)  # a second test of the same file
    assert len(cited) > 15
    for file, *names in cited:
        matches = list(tests.rglob(file))
        assert matches, f"{file} is cited in RELIABILITY.md but does not exist"
        source = matches[0].read_text()
        for name in filter(None, names):
            assert f"def {name.removeprefix('::')}(" in source, f"{file}::{name} is cited but not defined"
