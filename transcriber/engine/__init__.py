"""Audio decoding and speech recognition (WhisperX, inside the worker only)."""
