-- The change feed: nodes keep hot reads (tag -> manifest, a namespace's
-- access facts, a caller's roles and grants) in memory, and every change
-- such a read depends on is announced on the channel `berth_changes` when
-- its transaction commits. Triggers announce it, so no code path (pushes,
-- deletes, GC, retention, replication, the admin CLI) can forget to.
-- Payloads: 'r:<repository>' (its tags or manifests changed) and 'a'
-- (namespaces, memberships, permissions or grants changed).

CREATE FUNCTION announce_repository_change() RETURNS trigger AS $$
DECLARE
    rid BIGINT;
    repo TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN rid := OLD.repo_id; ELSE rid := NEW.repo_id; END IF;
    -- NULL while the repository itself is being deleted: its own trigger
    -- announces it.
    SELECT name INTO repo FROM repositories WHERE id = rid;
    IF repo IS NOT NULL THEN
        PERFORM pg_notify('berth_changes', 'r:' || repo);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER tags_announce
    AFTER INSERT OR UPDATE OF digest OR DELETE ON tags
    FOR EACH ROW EXECUTE FUNCTION announce_repository_change();
CREATE TRIGGER manifests_announce
    AFTER UPDATE OF content, media_type OR DELETE ON manifests
    FOR EACH ROW EXECUTE FUNCTION announce_repository_change();

CREATE FUNCTION announce_repository_delete() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('berth_changes', 'r:' || OLD.name);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER repositories_announce
    AFTER UPDATE OF name OR DELETE ON repositories
    FOR EACH ROW EXECUTE FUNCTION announce_repository_delete();

CREATE FUNCTION announce_access_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('berth_changes', 'a');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER namespaces_announce
    AFTER UPDATE OF name, group_id, public, external_access, status OR DELETE ON namespaces
    FOR EACH STATEMENT EXECUTE FUNCTION announce_access_change();
CREATE TRIGGER group_members_announce
    AFTER INSERT OR UPDATE OR DELETE ON group_members
    FOR EACH STATEMENT EXECUTE FUNCTION announce_access_change();
CREATE TRIGGER namespace_members_announce
    AFTER INSERT OR UPDATE OR DELETE ON namespace_members
    FOR EACH STATEMENT EXECUTE FUNCTION announce_access_change();
CREATE TRIGGER repository_permissions_announce
    AFTER INSERT OR UPDATE OR DELETE ON repository_permissions
    FOR EACH STATEMENT EXECUTE FUNCTION announce_access_change();
CREATE TRIGGER registry_user_grants_announce
    AFTER INSERT OR UPDATE OR DELETE ON registry_user_grants
    FOR EACH STATEMENT EXECUTE FUNCTION announce_access_change();
