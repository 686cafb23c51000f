"""Renderings of a transcript (txt, srt, vtt, tsv)."""
