-- The image list across namespaces ("My images") joins repositories to
-- their namespace and sorts them by last push, at 100,000 images: the
-- namespace (the name's first component) as an indexed generated column,
-- and the last manifest push kept on the repository by the push itself
-- (written last in its transaction, after the manifest and its tags).

ALTER TABLE repositories ADD COLUMN namespace TEXT GENERATED ALWAYS AS (
    CASE WHEN instr(name, '/') > 0 THEN substr(name, 1, instr(name, '/') - 1) ELSE name END
) VIRTUAL;
CREATE INDEX repositories_namespace ON repositories(namespace, name);

ALTER TABLE repositories ADD COLUMN pushed_at INTEGER;
UPDATE repositories SET pushed_at = (
    SELECT MAX(m.pushed_at) FROM manifests m WHERE m.repo_id = repositories.id
);
