"""Speaker diarization offline: CAM++ embeddings of the detected speech, clustered (diarizer.py)."""
