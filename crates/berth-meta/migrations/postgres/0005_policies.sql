-- Namespace policies: immutable tag patterns, a storage quota and
-- retention rules (both lists as JSON arrays).
CREATE TABLE namespace_policies (
    namespace_id    BIGINT PRIMARY KEY REFERENCES namespaces(id) ON DELETE CASCADE,
    immutable_tags  TEXT NOT NULL DEFAULT '[]',
    quota_bytes     BIGINT,
    retention       TEXT NOT NULL DEFAULT '[]',
    updated_at      BIGINT NOT NULL
);
