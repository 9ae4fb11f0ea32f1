-- Nodes keep which blobs a repository links (and their sizes) in memory
-- for blob HEAD and GET: a link that goes (a blob DELETE, garbage
-- collection, a repository deleted) is announced like a tag change.
CREATE TRIGGER repository_blobs_announce
    AFTER DELETE ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION announce_repository_change();
