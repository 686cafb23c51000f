"""The import contract between the package's parts (docs/ARCHITECTURE.md, the map).

Each part of ``transcriber`` may import only the parts listed for it in
``MAY_IMPORT``; the heavy libraries only where they belong.  The rules are
read from the source with ``ast``: a forbidden import fails here, with the
file and line, before it can blur the layers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "transcriber"

# The shared modules at the top of the package, that every part may use.
SHARED = {"errors", "logs"}

# part -> the other parts it may import (besides itself and SHARED).
MAY_IMPORT: dict[str, set[str]] = {
    "domain": set(),
    "exports": {"domain"},
    "engine": {"domain"},
    "worker": {"engine", "domain"},
    "config": {"domain", "exports"},
    "folder": {"domain", "exports", "config"},
    "mirror": {"domain", "folder", "scheduler.events"},
    "scheduler": {"folder", "worker", "engine", "mirror", "domain", "config", "exports"},
    # The API asks the daemon through its facade (Daemon's methods, and the records
    # it hands out: events, snapshots); it reads the folder itself, as a client of
    # the share could, and changes it only under the daemon's rules.
    "api": {"scheduler.daemon", "scheduler.events", "scheduler.snapshot", "folder", "exports", "domain", "config"},
    "cli": {"*"},
    "__main__": {"cli"},
    "__init__": set(),
    "errors": set(),
    "logs": set(),
}

# Libraries that load native code or hundreds of megabytes: imported inside
# functions of these modules only, never at a module's top level, so that the
# daemon and its API never load them.
HEAVY = {"whisperx": "engine", "torch": "engine", "pyannote": "engine", "faster_whisper": "engine",
         "ctranslate2": "engine"}
# Modules of the engine that are heavy themselves (a torch network's definition, vendored):
# they may import the heavy libraries at their top, and are imported only inside functions.
HEAVY_MODULES = {"engine/speakers/campplus.py": "transcriber.engine.speakers.campplus"}
# A library that only one module may import.
ONLY_IN = {"psycopg": "mirror/database.py", "psycopg_pool": "mirror/database.py"}


@dataclass(frozen=True)
class Import:
    source: Path
    line: int
    module: str  # absolute, dotted
    top_level: bool  # at the module's top level (not inside a function)


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[Import] = []

    def visit(node: ast.AST, top_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = top_level and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend(Import(path, child.lineno, alias.name, top_level) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append(Import(path, child.lineno, child.module, top_level))
                if child.module == "transcriber":  # from transcriber import errors
                    found.extend(Import(path, child.lineno, f"transcriber.{alias.name}", top_level)
                                 for alias in child.names)
            visit(child, inside)

    visit(tree, True)
    return found


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def allowed(part: str, module: str) -> bool:
    """May ``part`` import the package's ``module`` (dotted, without ``transcriber.``)?"""
    target = module.split(".")[0]
    if target == part or target in SHARED or module == "":
        return True
    rules = MAY_IMPORT[part]
    return "*" in rules or target in rules or any(module == rule or module.startswith(rule + ".")
                                                  for rule in rules)


def violations(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        part = part_of(path)
        for imp in imports_of(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{imp.line}"
            root = imp.module.split(".")[0]
            if root == "transcriber":
                inner = imp.module.removeprefix("transcriber").removeprefix(".")
                if not allowed(part, inner):
                    found.append(f"{where}: {part} may not import transcriber.{inner}")
                elif imp.module in HEAVY_MODULES.values() and imp.top_level:
                    found.append(f"{where}: {imp.module} only inside functions")
            elif root in HEAVY and path.relative_to(PACKAGE).as_posix() in HEAVY_MODULES:
                continue
            elif root in HEAVY and (imp.top_level or part != HEAVY[root]):
                found.append(f"{where}: {imp.module} only inside functions of {HEAVY[root]}/")
            elif root in ONLY_IN and path.relative_to(PACKAGE).as_posix() != ONLY_IN[root]:
                found.append(f"{where}: {imp.module} only in {ONLY_IN[root]}")
    return found


def test_every_part_of_the_package_has_its_rules() -> None:
    assert {part_of(path) for path in package_modules()} <= set(MAY_IMPORT)


def test_the_package_keeps_its_import_contract() -> None:
    assert violations(package_modules()) == []


@pytest.mark.parametrize(("part", "line", "why"), [
    ("domain", "from transcriber.folder.layout import SharedFolder", "domain may not import transcriber.folder.layout"),
    ("engine", "from transcriber.scheduler.store import JobStore", "engine may not import transcriber.scheduler.store"),
    ("api", "from transcriber.scheduler.store import JobStore", "api may not import transcriber.scheduler.store"),
    ("api", "from transcriber.engine.capabilities import host_capabilities",
     "api may not import transcriber.engine.capabilities"),
    ("api", "from transcriber.mirror.database import Database", "api may not import transcriber.mirror.database"),
    ("folder", "import whisperx", "whisperx only inside functions of engine/"),
    ("engine", "import torch", "torch only inside functions of engine/"),
    ("engine", "from transcriber.engine.speakers.campplus import CAMPPlus",
     "transcriber.engine.speakers.campplus only inside functions"),
    ("api", "import psycopg", "psycopg only in mirror/database.py"),
    ("exports", "from transcriber import api", "exports may not import transcriber.api"),
])
def test_a_forbidden_import_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: str, line: str,
                                      why: str) -> None:
    package = tmp_path / "transcriber"
    (package / part).mkdir(parents=True)
    module = package / part / "extra.py"
    module.write_text(f'"""A module that breaks the contract."""\n{line}\n')
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert [message.split(": ", 1)[1] for message in violations([module])] == [why]


def test_heavy_libraries_inside_an_engine_function_are_allowed(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "transcriber"
    (package / "engine").mkdir(parents=True)
    module = package / "engine" / "extra.py"
    module.write_text("def load() -> None:\n    import whisperx\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert violations([module]) == []


def test_the_daemon_and_its_api_load_neither_torch_nor_whisperx() -> None:
    code = ("import sys\n"
            "import transcriber.cli, transcriber.scheduler.daemon, transcriber.api.app, transcriber.api.server\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in "
            "{'torch', 'whisperx', 'pyannote', 'ctranslate2', 'faster_whisper'}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent).stdout
    assert loaded.strip() == "[]"
