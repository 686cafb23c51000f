-- tasks.status holds only what the mirror writes: a job's states (domain/job.py
-- JobStatus) and the mirror's own 'deleted' (domain/job.py DELETED). Every row
-- written before this migration has one of them, so the constraint validates
-- the existing rows as it is added.

ALTER TABLE tasks ADD CONSTRAINT tasks_status_known
    CHECK (status IN ('queued', 'retry_wait', 'processing', 'completed', 'error', 'deleted'));
