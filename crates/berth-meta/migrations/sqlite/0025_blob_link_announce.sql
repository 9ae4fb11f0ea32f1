-- Nodes keep which blobs a repository links (and their sizes) in memory
-- for blob HEAD and GET: a link that goes (a blob DELETE, garbage
-- collection, a repository deleted) is announced like a tag change.
CREATE TRIGGER repository_blobs_announce_delete AFTER DELETE ON repository_blobs
BEGIN
    INSERT INTO change_feed (topic, at)
    SELECT 'r:' || name, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM repositories WHERE id = old.repo_id;
END;
