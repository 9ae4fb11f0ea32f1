-- Links a collection restored: blobs a manifest references but its
-- repository no longer linked (usage and blob reads follow links).
ALTER TABLE gc_runs ADD COLUMN links_restored BIGINT NOT NULL DEFAULT 0;

-- Progress of a collection's blob step: how many blobs (and bytes) it
-- expected to delete when the step began, and when the step began and
-- ended, so that a run reports its rate and the time it has left.
ALTER TABLE gc_runs ADD COLUMN blobs_expected BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gc_runs ADD COLUMN bytes_expected BIGINT NOT NULL DEFAULT 0;
ALTER TABLE gc_runs ADD COLUMN blobs_started_at BIGINT;
ALTER TABLE gc_runs ADD COLUMN blobs_ended_at BIGINT;
