-- Pull policies: what a manifest read must satisfy (signatures now,
-- vulnerability severity next), per namespace, with one platform default
-- per kind (namespace_id NULL) that namespaces can only add to.
-- settings: the kind's JSON (signature: trusted keys and tag patterns).
CREATE TABLE pull_policies (
    id            INTEGER PRIMARY KEY,
    namespace_id  INTEGER REFERENCES namespaces(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,
    mode          TEXT NOT NULL,
    settings      TEXT NOT NULL,
    updated_by    TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX pull_policies_namespace ON pull_policies (namespace_id, kind)
    WHERE namespace_id IS NOT NULL;
CREATE UNIQUE INDEX pull_policies_platform ON pull_policies (kind)
    WHERE namespace_id IS NULL;

-- Nodes cache verdicts: a policy change ('p') drops them all; a manifest
-- pushed by digest with a subject (a signature or attestation as an OCI
-- 1.1 referrer) drops its repository's, as tag changes already do.
CREATE TRIGGER pull_policies_announce_insert AFTER INSERT ON pull_policies
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('p', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER pull_policies_announce_update AFTER UPDATE ON pull_policies
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('p', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER pull_policies_announce_delete AFTER DELETE ON pull_policies
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('p', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER manifests_announce_referrer AFTER INSERT ON manifests
WHEN new.subject IS NOT NULL
BEGIN
    INSERT INTO change_feed (topic, at)
    SELECT 'r:' || name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM repositories WHERE id = new.repo_id;
END;
