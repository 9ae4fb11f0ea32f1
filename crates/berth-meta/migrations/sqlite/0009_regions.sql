-- Regions: where each blob's bytes are, the durable job queue, and the
-- synchronization rules with their records. Times are Unix milliseconds.

-- The regions whose storage holds a blob. A push records the pusher's
-- region; replication and on-demand fetches add the others. A blob row's
-- deletion (garbage collection) takes its locations with it.
CREATE TABLE blob_locations (
    digest  TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE,
    region  TEXT NOT NULL,
    since   BIGINT NOT NULL,
    PRIMARY KEY (digest, region)
);
CREATE INDEX blob_locations_region ON blob_locations(region, digest);

-- Where a namespace's images are replicated: a JSON list of region names,
-- or NULL for every region.
ALTER TABLE namespaces ADD COLUMN replication_regions TEXT;

-- The durable job queue. A worker claims a waiting job whose time has come
-- (or a running one whose lease ran out: its node died) and holds a lease
-- while it works; a failure waits with backoff, and a job that fails too
-- often stays as 'failed' with its error. Done jobs are deleted: what users
-- read is in the records tables. `dedupe_key` keeps one live job per key.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    region       TEXT,
    dedupe_key   TEXT UNIQUE,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'waiting',
    attempts     BIGINT NOT NULL DEFAULT 0,
    run_after    BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    last_error   TEXT
);
CREATE INDEX jobs_ready ON jobs(state, run_after);

-- ServiceStage-style synchronization: each new tag of `repo` is copied to
-- the same repository name in `target_namespace`, its blobs placed in
-- `target_region`.
CREATE TABLE sync_rules (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    repo              TEXT NOT NULL,
    target_region     TEXT NOT NULL,
    target_namespace  TEXT NOT NULL,
    overwrite         BIGINT NOT NULL DEFAULT 0,
    author            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (repo, target_region, target_namespace)
);

-- One record per tag and target of every synchronization.
CREATE TABLE sync_records (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    rule_id           BIGINT REFERENCES sync_rules(id) ON DELETE SET NULL,
    repo              TEXT NOT NULL,
    tag               TEXT NOT NULL,
    digest            TEXT NOT NULL,
    target_region     TEXT NOT NULL,
    target_namespace  TEXT NOT NULL,
    overwrite         BIGINT NOT NULL,
    trigger           TEXT NOT NULL,
    operator          TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT,
    bytes_copied      BIGINT NOT NULL DEFAULT 0,
    blobs_copied      BIGINT NOT NULL DEFAULT 0,
    blobs_present     BIGINT NOT NULL DEFAULT 0,
    attempts          BIGINT NOT NULL DEFAULT 0,
    error             TEXT
);
CREATE INDEX sync_records_repo ON sync_records(repo, created_at);
CREATE INDEX sync_records_created ON sync_records(created_at);
