"""One entry point: ``python -m bench [all|throughput|latency|api-load|memory|scale] [--quick]``.

Generates its own audio, runs each scenario, prints a table and writes
bench/results/<scenario>.json.  Ratios are measured within one run; the
machine is shared and noisy, so absolute seconds are for context only.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import psutil

from bench import api_load, latency, memory, scale, throughput
from bench.harness import RESULTS, SETTINGS, save

SCENARIOS = {
    "throughput": lambda work, quick: throughput.run(work, long_minutes=1.0 if quick else 5.0),
    "latency": lambda work, quick: latency.run(work, rounds=5 if quick else 7),
    "api-load": lambda work, quick: api_load.run(work, seconds=5 if quick else 20, minutes=2.0 if quick else 5.0),
    "memory": lambda work, quick: memory.run(work, minutes=5.0 if quick else 60.0),
    "scale": lambda work, quick: scale.run(work, files=1000 if quick else 10_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("scenarios", nargs="*", default=["all"], choices=["all", *SCENARIOS])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    args = parser.parse_args()
    chosen = list(SCENARIOS) if "all" in args.scenarios else args.scenarios
    machine = {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
               "processor": platform.processor() or platform.machine(), "settings": SETTINGS}
    print(json.dumps({"machine": machine}))
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as temp:
            started = time.perf_counter()
            figures = SCENARIOS[name](Path(temp), args.quick)
            figures["scenario_seconds"] = round(time.perf_counter() - started, 1)
            figures["machine"] = machine
            figures["quick"] = args.quick
        save(name, figures)
        print(f"\n== {name} ==")
        print(json.dumps(figures, indent=2, default=str))
    print(f"\nresults in {RESULTS}")


if __name__ == "__main__":
    main()
