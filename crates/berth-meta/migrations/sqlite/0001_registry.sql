-- Registry core: repositories, blobs and their links, manifests, tags, uploads.
-- Times are Unix milliseconds.

CREATE TABLE repositories (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE blobs (
    digest      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE repository_blobs (
    repo_id     INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest      TEXT NOT NULL REFERENCES blobs(digest),
    linked_at   INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repository_blobs_digest ON repository_blobs(digest);

CREATE TABLE manifests (
    repo_id         INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest          TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    size            INTEGER NOT NULL,
    content         BLOB NOT NULL,
    subject         TEXT,
    artifact_type   TEXT,
    annotations     TEXT,
    pushed_at       INTEGER NOT NULL,
    pull_count      INTEGER NOT NULL DEFAULT 0,
    last_pulled_at  INTEGER,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;

-- What a manifest references: kind 0 = blob (config, layer), 1 = child manifest.
CREATE TABLE manifest_refs (
    repo_id     INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    ref_digest  TEXT NOT NULL,
    kind        INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest, ref_digest),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX manifest_refs_ref ON manifest_refs(ref_digest);

CREATE TABLE tags (
    repo_id         INTEGER NOT NULL,
    name            TEXT NOT NULL,
    digest          TEXT NOT NULL,
    pushed_at       INTEGER NOT NULL,
    pull_count      INTEGER NOT NULL DEFAULT 0,
    last_pulled_at  INTEGER,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifests(repo_id, digest) ON DELETE CASCADE
);
CREATE INDEX tags_digest ON tags(repo_id, digest);

CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    repo        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX uploads_updated ON uploads(updated_at);
