#!/usr/bin/env bash
# Set up transcriber on a Debian/Ubuntu machine. Idempotent: run it again any time.
#   scripts/setup.sh         system packages, .venv with the runtime dependencies, offline models
#   scripts/setup.sh --dev   the same plus what the tests need (espeak-ng, sox, pytest, ruff)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

say() { printf '[setup] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_system_packages() {
    local wanted=(ffmpeg)
    # The tests also start their own PostgreSQL server (initdb + pg_ctl) for the mirror.
    [ "$dev" -eq 1 ] && wanted+=(espeak-ng sox postgresql)
    python3 -c 'import ensurepip, venv' 2>/dev/null || wanted+=(python3-venv)
    local missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing system packages: ${missing[*]}"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        say "system packages present: ${wanted[*]}"
    fi
}

install_python_packages() {
    local requirements=requirements.txt
    [ "$dev" -eq 1 ] && requirements=requirements-dev.txt
    [ -x .venv/bin/python ] || { say "creating .venv"; python3 -m venv .venv; }
    # pip resolves for ~20 s even when nothing is missing; a stamp of the
    # requirement and constraint files skips that on repeated runs.
    local stamp=".venv/.installed-$(cat requirements*.txt constraints.txt pyproject.toml | sha256sum | cut -c1-16)-$dev"
    if [ -f "$stamp" ]; then
        say "python packages up to date"
        return
    fi
    say "installing python packages from $requirements (first run downloads torch, ~3.5 GB)"
    .venv/bin/python -m pip install -q --upgrade pip
    # constraints.txt: the torch/WhisperX engine versions this was tested with (as in the image).
    .venv/bin/python -m pip install -q -r "$requirements" -c constraints.txt
    .venv/bin/python -m pip install -q --no-deps -e .
    touch "$stamp"
}

install_system_packages
install_python_packages
say "installing the offline models into ./models"
.venv/bin/python -m transcriber --config config.yaml models install
say "done"
