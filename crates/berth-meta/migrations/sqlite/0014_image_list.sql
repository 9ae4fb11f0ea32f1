-- The image list across namespaces ("My images") filters by namespace and
-- sorts by last push, at 100,000 images: the namespace (the name's first
-- component) as an indexed generated column, and the last manifest push
-- kept on the repository. The push writes it, last in its transaction;
-- this trigger clears it when the repository's last manifest goes, so
-- `pushed_at IS NOT NULL` says "is an image" without a look at manifests.

ALTER TABLE repositories ADD COLUMN namespace TEXT GENERATED ALWAYS AS (
    CASE WHEN instr(name, '/') > 0 THEN substr(name, 1, instr(name, '/') - 1) ELSE name END
) VIRTUAL;
CREATE INDEX repositories_namespace ON repositories(namespace, name);

ALTER TABLE repositories ADD COLUMN pushed_at INTEGER;
UPDATE repositories SET pushed_at = (
    SELECT MAX(m.pushed_at) FROM manifests m WHERE m.repo_id = repositories.id
);
-- Pages sorted by name, deep ones too, are read from this index alone.
CREATE INDEX repositories_images ON repositories(name, pushed_at);

CREATE TRIGGER manifests_last_gone AFTER DELETE ON manifests
WHEN NOT EXISTS (SELECT 1 FROM manifests WHERE repo_id = old.repo_id)
BEGIN
    UPDATE repositories SET pushed_at = NULL WHERE id = old.repo_id;
END;
