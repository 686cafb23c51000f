"""Speaker diarization offline: CAM++ embeddings of the words' speech, clustered (diarizer.py)."""
