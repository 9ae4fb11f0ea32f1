-- Online garbage collection.

-- A blob's state: 0 live; 1 claimed by the collector, which is deleting its
-- bytes. A claimed blob cannot be linked, mounted or committed again until
-- the collector has forgotten it.
ALTER TABLE blobs ADD COLUMN state INTEGER NOT NULL DEFAULT 0;
CREATE INDEX blobs_claimed ON blobs(state) WHERE state <> 0;

-- The digest an upload session is about to commit: the collector leaves a
-- blob with that digest alone while the session lives.
ALTER TABLE uploads ADD COLUMN digest TEXT;
CREATE INDEX uploads_digest ON uploads(digest) WHERE digest IS NOT NULL;

-- Every collection, its progress and what it reclaimed.
CREATE TABLE gc_runs (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    cause              TEXT NOT NULL,
    actor              TEXT NOT NULL,
    dry_run            INTEGER NOT NULL DEFAULT 0,
    full_sweep         INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,
    stage              TEXT NOT NULL,
    started_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    finished_at        INTEGER,
    uploads_expired    INTEGER NOT NULL DEFAULT 0,
    manifests_deleted  INTEGER NOT NULL DEFAULT 0,
    links_deleted      INTEGER NOT NULL DEFAULT 0,
    blobs_deleted      INTEGER NOT NULL DEFAULT 0,
    bytes_reclaimed    INTEGER NOT NULL DEFAULT 0,
    orphans_deleted    INTEGER NOT NULL DEFAULT 0,
    error              TEXT
);
CREATE INDEX gc_runs_started ON gc_runs(started_at);
