#!/usr/bin/env bash
# Set up (idempotent, with the test tools) and run the whole test suite: lint, types, unit,
# integration and end-to-end tests with the real WhisperX model, then the Docker
# image: built and run as a user would (scripts/image-test.sh; SKIP_IMAGE_TEST=1 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/ruff check transcriber tests
.venv/bin/mypy  # the package, with the settings in pyproject.toml
.venv/bin/pytest "$@"
if [ "${SKIP_IMAGE_TEST:-0}" = 1 ]; then
    echo "[test] SKIP_IMAGE_TEST=1: the Docker image is not built"
else
    exec scripts/image-test.sh
fi
