-- The call facts of a transcript (the .result's analysis: silence marks, speech time, speakers'
-- talk time and turns, overlaps), for queries and dashboards, with the two that GET /tasks
-- filters on, or a dashboard sorts by, as plain columns: speech_seconds and
-- longest_silence_seconds (GET /tasks?min_silence=). Transcripts mirrored before this
-- migration keep NULL here until they are re-run: their .result has no analysis.

ALTER TABLE transcriptions ADD COLUMN analysis jsonb;
ALTER TABLE transcriptions ADD COLUMN speech_seconds double precision;
ALTER TABLE transcriptions ADD COLUMN longest_silence_seconds double precision;
CREATE INDEX transcriptions_longest_silence ON transcriptions (longest_silence_seconds);
