-- The speakers of a diarized transcript (its transcription.speakers: id, talk_seconds,
-- words, segments), for GET /tasks?speaker=&speakers= and GET /search?speaker=.
-- Transcripts mirrored before this migration have none; a reconciliation of their
-- .result files fills it in.

ALTER TABLE transcriptions ADD COLUMN speakers jsonb NOT NULL DEFAULT '[]';
CREATE INDEX transcriptions_speakers ON transcriptions USING gin (speakers jsonb_path_ops);
