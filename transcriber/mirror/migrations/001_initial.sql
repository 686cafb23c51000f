-- The mirror of the shared folder (docs/CONFIGURATION.md, database). The folder stays the source of truth.

CREATE TABLE tasks (
    task_id          uuid PRIMARY KEY,
    filename         text        NOT NULL,
    status           text        NOT NULL,  -- the sidecar strings, plus 'deleted'
    source           text,
    priority         smallint,
    settings         jsonb       NOT NULL DEFAULT '{}',
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer,
    error_code       text,
    error_message    text,
    created_at       timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    audio_duration   double precision,
    processing_time  double precision,
    version          bigint      NOT NULL,  -- nanoseconds of the change; older writes are ignored
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_filename ON tasks (filename);
CREATE INDEX tasks_status_created ON tasks (status, created_at);
CREATE INDEX tasks_created ON tasks (created_at);

CREATE TABLE transcriptions (
    task_id     uuid PRIMARY KEY REFERENCES tasks (task_id) ON DELETE CASCADE,
    language    text,
    text        text        NOT NULL,
    segments    jsonb       NOT NULL DEFAULT '[]',
    confidence  double precision,
    word_count  integer,
    model       text,
    search      tsvector GENERATED ALWAYS AS (
                    to_tsvector('russian', coalesce(text, '')) || to_tsvector('english', coalesce(text, ''))
                ) STORED
);
CREATE INDEX transcriptions_search ON transcriptions USING gin (search);

CREATE TABLE task_events (
    id          bigserial PRIMARY KEY,
    task_id     uuid,
    filename    text,
    event_time  timestamptz NOT NULL,
    event_type  text        NOT NULL,  -- state_change, error, quarantined, deleted, engine_load, engine_run, reconciled
    status      text,
    details     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX task_events_task ON task_events (task_id, id);
CREATE INDEX task_events_time ON task_events (event_time);
