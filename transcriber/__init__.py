"""transcriber: a drop-folder transcription daemon built on WhisperX."""

__version__ = "0.1.0"
