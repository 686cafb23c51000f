-- Every statement the mirror sends to PostgreSQL, one named block each
-- (the format of procrastinate's procrastinate/sql/queries.sql):
--
--     -- query_name --
--     -- what it does (any number of comment lines)
--     the statement, with psycopg's %(name)s parameters
--
-- database.py parses this file once, at import, and runs the blocks by name.
-- The schema itself is in migrations/NNN_name.sql.
--
-- Column lists are not written here: the row dataclasses of database.py
-- (TaskRow, TranscriptionRow, EventRow) are their one definition, and a
-- placeholder is filled in from their fields when the file is loaded:
--
--     {task_columns}        the fields of TaskRow, in order (likewise
--                           {transcription_columns}, {event_columns})
--     {task_values}         %(field)s for each of them, in the same order
--     {task_listed}         the fields GET /tasks shows (all but those
--                           marked internal: version)
--     {task_kept}           in an upsert's SET: every column the statement
--                           neither assigns itself nor conflicts on keeps
--                           its stored value when the new write has NULL
--     {transcription_replaced}  likewise, but the new value replaces it
--     {block_name}          another block's text (a shared fragment)


-- lock_migrations --
-- One migrator at a time (the key is MIGRATION_LOCK)
SELECT pg_advisory_lock(%(key)s)

-- unlock_migrations --
-- Let the next migrator in
SELECT pg_advisory_unlock(%(key)s)

-- create_migrations_table --
-- The record of the migrations applied, created before the first of them
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)

-- applied_migrations --
-- The versions already applied
SELECT version FROM schema_migrations

-- record_migration --
-- One migration applied, in the transaction that applied it
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- upsert_task --
-- A newer version wins; a field the newer write does not know (NULL) keeps
-- its value, settings are kept unless the write has some, and attempts
-- never go down. A replayed or late write changes nothing.
INSERT INTO tasks ({task_columns})
VALUES ({task_values})
ON CONFLICT (task_id) DO UPDATE SET
    status = EXCLUDED.status,
    version = EXCLUDED.version,
    settings = COALESCE(NULLIF(EXCLUDED.settings, '{}'::jsonb), tasks.settings),
    attempts = GREATEST(EXCLUDED.attempts, tasks.attempts),
    {task_kept},
    updated_at = now()
WHERE tasks.version < EXCLUDED.version

-- upsert_transcription --
-- The transcript of a completed task; a later one (a forced re-run) replaces it
INSERT INTO transcriptions ({transcription_columns})
VALUES ({transcription_values})
ON CONFLICT (task_id) DO UPDATE SET
    {transcription_replaced}

-- insert_event --
-- One line of the audit log
INSERT INTO task_events ({event_columns})
VALUES ({event_values})

-- task_versions --
-- Every task not marked deleted, for the reconciliation with the folder
SELECT task_id, filename, status, version FROM tasks WHERE status <> 'deleted'

-- task_filter --
-- The tasks GET /tasks asks for; a NULL parameter does not filter
(%(status)s::text IS NULL OR status = %(status)s)
    AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
    AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
    AND (%(speaker)s::text IS NULL OR EXISTS (
        SELECT 1 FROM transcriptions tr WHERE tr.task_id = tasks.task_id
            AND (tr.speakers @> jsonb_build_array(jsonb_build_object('id', %(speaker)s::text))
                 OR tr.speakers @> jsonb_build_array(jsonb_build_object('name', %(speaker)s::text)))))
    AND (%(speakers)s::integer IS NULL OR EXISTS (
        SELECT 1 FROM transcriptions tr WHERE tr.task_id = tasks.task_id
            AND jsonb_array_length(tr.speakers) = %(speakers)s))
    AND (%(min_silence)s::double precision IS NULL OR EXISTS (
        SELECT 1 FROM transcriptions tr WHERE tr.task_id = tasks.task_id
            AND tr.longest_silence_seconds >= %(min_silence)s))

-- count_tasks --
-- GET /tasks' total
SELECT count(*) AS n FROM tasks WHERE {task_filter}

-- list_tasks --
-- One page of GET /tasks, newest first
SELECT {task_listed},
       COALESCE((SELECT jsonb_agg(s->>'id') FROM transcriptions tr, jsonb_array_elements(tr.speakers) AS s
                 WHERE tr.task_id = tasks.task_id), '[]'::jsonb) AS speakers
FROM tasks
WHERE {task_filter}
ORDER BY created_at DESC NULLS LAST, task_id
LIMIT %(limit)s OFFSET %(offset)s

-- search --
-- GET /search: full-text in the Russian and English configurations, with a
-- snippet and the segments that match; the text is the corrected one (the mirror
-- stores the result with its .edits applied), a speaker by id or by the name given
WITH query AS (
    SELECT websearch_to_tsquery('russian', %(q)s) || websearch_to_tsquery('english', %(q)s) AS q
)
SELECT t.task_id, t.filename, t.status, t.finished_at, tr.language,
       ts_headline('russian', tr.text, query.q, 'MaxFragments=2, MaxWords=20, MinWords=5') AS snippet,
       ts_rank(tr.search, query.q) AS rank,
       COALESCE((
           SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                      'start', s->'start', 'end', s->'end', 'text', s->'text', 'speaker', s->'speaker',
                      'speaker_name', s->'speaker_name')))
           FROM jsonb_array_elements(tr.segments) AS s
           WHERE (to_tsvector('russian', s->>'text') || to_tsvector('english', s->>'text')) @@ query.q
             AND (%(speaker)s::text IS NULL OR %(speaker)s IN (s->>'speaker', s->>'speaker_name'))
       ), '[]'::jsonb) AS segments
FROM transcriptions tr JOIN tasks t USING (task_id), query
WHERE tr.search @@ query.q AND t.status <> 'deleted'
  AND (%(speaker)s::text IS NULL OR EXISTS (
      SELECT 1 FROM jsonb_array_elements(tr.segments) AS s
      WHERE %(speaker)s IN (s->>'speaker', s->>'speaker_name')
        AND (to_tsvector('russian', s->>'text') || to_tsvector('english', s->>'text')) @@ query.q))
ORDER BY rank DESC, t.finished_at DESC NULLS LAST
LIMIT %(limit)s OFFSET %(offset)s
