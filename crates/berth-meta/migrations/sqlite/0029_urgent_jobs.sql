-- Jobs a worker takes before every other waiting job (a collection's
-- `gc_help`: a node busy with a backlog of replication jobs still joins
-- a collection at its next free slot). Few at a time, so a partial index.
ALTER TABLE jobs ADD COLUMN urgent BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_urgent ON jobs(run_after) WHERE urgent = 1 AND state = 'waiting';
