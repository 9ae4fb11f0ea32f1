-- Namespace policies: immutable tag patterns, a storage quota and
-- retention rules (both lists as JSON arrays).
CREATE TABLE namespace_policies (
    namespace_id    INTEGER PRIMARY KEY REFERENCES namespaces(id) ON DELETE CASCADE,
    immutable_tags  TEXT NOT NULL DEFAULT '[]',
    quota_bytes     INTEGER,
    retention       TEXT NOT NULL DEFAULT '[]',
    updated_at      INTEGER NOT NULL
);
