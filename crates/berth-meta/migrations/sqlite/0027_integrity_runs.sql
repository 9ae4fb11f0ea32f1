-- Integrity checks (`berth fsck` and the background scrub): what each run
-- checked and found. `problems` is a JSON list of the first problems found
-- (kind, region, digest, detail), for the API and the console.
CREATE TABLE integrity_runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    cause            TEXT NOT NULL,
    actor            TEXT NOT NULL,
    repair           INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    blobs_checked    BIGINT NOT NULL DEFAULT 0,
    bytes_checked    BIGINT NOT NULL DEFAULT 0,
    damaged          BIGINT NOT NULL DEFAULT 0,
    missing          BIGINT NOT NULL DEFAULT 0,
    repaired         BIGINT NOT NULL DEFAULT 0,
    dangling         BIGINT NOT NULL DEFAULT 0,
    orphans          BIGINT NOT NULL DEFAULT 0,
    problems         TEXT NOT NULL DEFAULT '[]',
    error            TEXT
);
