-- A collection's blob step in shares that several nodes work on at once
-- (digests after `after_digest`, up to `until_digest`, NULL: the last).
-- A shard is leased by one node; `cursor` is where its search stopped, so
-- a node that takes over from one that died resumes there.
CREATE TABLE gc_shards (
    run              BIGINT NOT NULL,
    shard            BIGINT NOT NULL,
    after_digest     TEXT NOT NULL,
    until_digest     TEXT,
    cursor           TEXT,
    owner            TEXT,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    done             BIGINT NOT NULL DEFAULT 0,
    blobs_deleted    BIGINT NOT NULL DEFAULT 0,
    bytes_reclaimed  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run, shard)
);
