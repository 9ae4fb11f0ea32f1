-- The change feed (see the PostgreSQL migration): SQLite has no
-- notification channel, so the triggers append to this table and the
-- serving process reads what is new every 100 ms. Writers take turns, so
-- ids become visible in order and a cursor on the id misses nothing; the
-- admin CLI and `berth gc` in another process are seen the same way.

CREATE TABLE change_feed (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic  TEXT NOT NULL,
    at     INTEGER NOT NULL
);

CREATE TRIGGER tags_announce_insert AFTER INSERT ON tags
BEGIN
    INSERT INTO change_feed (topic, at)
    SELECT 'r:' || name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM repositories WHERE id = new.repo_id;
END;
CREATE TRIGGER tags_announce_update AFTER UPDATE OF digest ON tags
BEGIN
    INSERT INTO change_feed (topic, at)
    SELECT 'r:' || name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM repositories WHERE id = new.repo_id;
END;
CREATE TRIGGER tags_announce_delete AFTER DELETE ON tags
BEGIN
    INSERT INTO change_feed (topic, at)
    SELECT 'r:' || name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM repositories WHERE id = old.repo_id;
END;
CREATE TRIGGER manifests_announce_update AFTER UPDATE OF content, media_type ON manifests
BEGIN
    INSERT INTO change_feed (topic, at)
    SELECT 'r:' || name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM repositories WHERE id = new.repo_id;
END;
CREATE TRIGGER manifests_announce_delete AFTER DELETE ON manifests
BEGIN
    INSERT INTO change_feed (topic, at)
    SELECT 'r:' || name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM repositories WHERE id = old.repo_id;
END;
CREATE TRIGGER repositories_announce_update AFTER UPDATE OF name ON repositories
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('r:' || old.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER repositories_announce_delete AFTER DELETE ON repositories
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('r:' || old.name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER namespaces_announce_update AFTER UPDATE OF name, group_id, public, external_access, status ON namespaces
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER namespaces_announce_delete AFTER DELETE ON namespaces
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER group_members_announce_insert AFTER INSERT ON group_members
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER group_members_announce_update AFTER UPDATE ON group_members
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER group_members_announce_delete AFTER DELETE ON group_members
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER namespace_members_announce_insert AFTER INSERT ON namespace_members
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER namespace_members_announce_update AFTER UPDATE ON namespace_members
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER namespace_members_announce_delete AFTER DELETE ON namespace_members
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER repository_permissions_announce_insert AFTER INSERT ON repository_permissions
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER repository_permissions_announce_update AFTER UPDATE ON repository_permissions
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER repository_permissions_announce_delete AFTER DELETE ON repository_permissions
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER registry_user_grants_announce_insert AFTER INSERT ON registry_user_grants
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER registry_user_grants_announce_update AFTER UPDATE ON registry_user_grants
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER registry_user_grants_announce_delete AFTER DELETE ON registry_user_grants
BEGIN
    INSERT INTO change_feed (topic, at)
    VALUES ('a', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
