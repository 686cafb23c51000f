"""WhisperX alone: load the model once, transcribe the given files, print timings as JSON.

    python -m bench.whisperx_alone MODEL_DIR LANGUAGE BATCH_SIZE FILE...
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    model_dir, language, batch_size, *files = sys.argv[1:]
    import whisperx

    started = time.perf_counter()
    model = whisperx.load_model(
        model_dir, "cpu", compute_type="int8", language=language, vad_method="pyannote",
        threads=os.cpu_count() or 1, asr_options={"temperatures": [0.1]},
    )
    loaded = time.perf_counter()
    for path in files:
        model.transcribe(whisperx.load_audio(path), batch_size=int(batch_size), language=language)
    finished = time.perf_counter()
    print(json.dumps({"load_seconds": loaded - started, "transcribe_seconds": finished - loaded}))


if __name__ == "__main__":
    main()
