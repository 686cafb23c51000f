#!/usr/bin/env bash
# Set up (idempotent, with the test tools) and run the whole test suite: lint, unit,
# integration and end-to-end tests with the real WhisperX model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
.venv/bin/ruff check transcriber tests
exec .venv/bin/pytest "$@"
