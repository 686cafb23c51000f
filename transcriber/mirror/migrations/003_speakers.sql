-- The speakers of a diarized transcript (its transcription.speakers: id, talk_seconds,
-- words, segments), for GET /tasks?speaker=&speakers= and GET /search?speaker=.
-- Transcripts mirrored before this migration get an empty list: before it, diarization
-- ran only with a hub download, and a transcript diarized that way is found by
-- /search?speaker= (its segments) but not by /tasks?speaker= until it is re-run.

ALTER TABLE transcriptions ADD COLUMN speakers jsonb NOT NULL DEFAULT '[]';
CREATE INDEX transcriptions_speakers ON transcriptions USING gin (speakers jsonb_path_ops);
