"""One entry point: ``python -m bench [all|SCENARIO …] [--quick] [--no-alone] [--sweep]``.

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

from bench import api_load, diarization, exports, latency, memory, scale, throughput, upload
from bench.harness import RESULTS, SETTINGS, save

SCENARIOS = {
    "throughput": lambda work, args: throughput.run(work, long_minutes=1.0 if args.quick else 5.0),
    "latency": lambda work, args: latency.run(work, rounds=5 if args.quick else 7),
    "api-load": lambda work, args: api_load.run(work, seconds=5 if args.quick else 20,
                                                minutes=2.0 if args.quick else 5.0),
    "memory": lambda work, args: memory.run(work, minutes=5.0 if args.quick else 60.0, alone=not args.no_alone),
    "scale": lambda work, args: scale.run(work, files=1000 if args.quick else 10_000),
    "diarization": lambda work, args: diarization.run(work, sweep=args.sweep),
    "speakers-memory": lambda work, args: memory.run_speakers(
        work, minutes=args.minutes or (5.0 if args.quick else 60.0)),
    "upload": lambda work, args: upload.run(work, megabytes=50 if args.quick else 200),
    "exports": lambda work, args: exports.run(work, minutes=args.minutes or (10.0 if args.quick else 60.0)),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("scenarios", nargs="*", default=["all"], choices=["all", *SCENARIOS])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.add_argument("--no-alone", action="store_true",
                        help="memory: leave out the WhisperX-alone comparison (for repeat runs)")
    parser.add_argument("--minutes", type=float, default=0.0, help="speakers-memory, exports: the recording's length")
    parser.add_argument("--sweep", action="store_true", help="diarization: DER at other clustering thresholds")
    args = parser.parse_args()
    chosen = list(SCENARIOS) if "all" in args.scenarios else args.scenarios
    machine = {"cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
               "processor": platform.processor() or platform.machine(), "settings": SETTINGS}
    print(json.dumps({"machine": machine}))
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as temp:
            started = time.perf_counter()
            figures = SCENARIOS[name](Path(temp), args)
            figures["scenario_seconds"] = round(time.perf_counter() - started, 1)
            figures["machine"] = machine
            figures["quick"] = args.quick
        save(name, figures)
        print(f"\n== {name} ==")
        print(json.dumps(figures, indent=2, default=str))
    print(f"\nresults in {RESULTS}")


if __name__ == "__main__":
    main()
