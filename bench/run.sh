#!/usr/bin/env bash
# Run the benchmarks: scripts/setup.sh --dev, wrk, then python -m bench (arguments passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
command -v wrk >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -q wrk || sudo apt-get install -y -q wrk; }
exec .venv/bin/python -m bench "$@"
