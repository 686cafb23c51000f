#!/usr/bin/env bash
# Set up (idempotent) and run the daemon on ./shared with ./config.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m transcriber --config "${CONFIG_PATH:-config.yaml}" "$@"
